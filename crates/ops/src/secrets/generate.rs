//! Secret values: characters drawn from the OS random source with rejection
//! sampling, so every character of the alphabet is exactly as likely as any
//! other (a plain `byte % len` favours the first `256 % len` characters).

use rand::RngCore;

use crate::config::Secret;

/// A fresh value of `length` characters from `alphabet` (validated config:
/// distinct printable ASCII, 16 to 256 characters).
pub(crate) fn generate(length: usize, alphabet: &str) -> Secret<String> {
    generate_with(&mut rand::rngs::OsRng, length, alphabet)
}

/// [`generate`] over any byte source, so tests can feed chosen bytes.
pub(crate) fn generate_with(
    rng: &mut dyn RngCore,
    length: usize,
    alphabet: &str,
) -> Secret<String> {
    let chars: Vec<char> = alphabet.chars().collect();
    let n = chars.len();
    assert!((1..=256).contains(&n), "alphabet size {n} outside 1..=256");
    // The largest multiple of n that fits in a byte: bytes at or above it
    // are thrown away, so what is kept maps evenly onto the alphabet.
    let zone = 256 - (256 % n);
    let mut out = String::with_capacity(length);
    let mut buf = [0_u8; 64];
    while out.len() < length {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            if usize::from(b) < zone {
                out.push(chars[usize::from(b) % n]);
                if out.len() == length {
                    break;
                }
            }
        }
    }
    Secret::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the given bytes, then repeats the last one.
    struct Bytes(Vec<u8>, usize);

    impl RngCore for Bytes {
        fn next_u32(&mut self) -> u32 {
            unimplemented!()
        }
        fn next_u64(&mut self) -> u64 {
            unimplemented!()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for d in dest {
                *d = self.0[self.1.min(self.0.len() - 1)];
                self.1 += 1;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    #[test]
    fn generated_values_have_the_length_and_alphabet_asked_for() {
        for length in [48, 57, 64] {
            let v = generate(length, crate::config::DEFAULT_ALPHABET);
            assert_eq!(v.expose().len(), length);
            assert!(v
                .expose()
                .chars()
                .all(|c| crate::config::DEFAULT_ALPHABET.contains(c)));
        }
        let v = generate(48, "0123456789abcdef");
        assert!(v.expose().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn bytes_beyond_the_last_full_multiple_are_rejected() {
        // 62 characters: 256 % 62 = 8, so bytes 248..=255 must be skipped
        // rather than wrapped onto 'A'..'H'.
        let alphabet = crate::config::DEFAULT_ALPHABET;
        let mut rng = Bytes(vec![248, 255, 250, 1, 247], 0);
        let v = generate_with(&mut rng, 2, alphabet);
        let chars: Vec<char> = alphabet.chars().collect();
        assert_eq!(
            v.expose().as_str(),
            format!("{}{}", chars[1], chars[247 % 62])
        );
    }

    #[test]
    fn every_character_is_reachable_and_none_is_favoured() {
        // Feed each byte value once: every accepted byte maps to one
        // character, so each character must appear exactly zone / n times.
        let alphabet = crate::config::DEFAULT_ALPHABET;
        let all: Vec<u8> = (0..=255).collect();
        let mut rng = Bytes(all, 0);
        let n = alphabet.chars().count();
        let zone = 256 - 256 % n;
        let v = generate_with(&mut rng, zone, alphabet);
        for c in alphabet.chars() {
            assert_eq!(v.expose().matches(c).count(), zone / n, "character {c:?}");
        }
    }

    #[test]
    fn two_values_differ() {
        let a = generate(48, crate::config::DEFAULT_ALPHABET);
        let b = generate(48, crate::config::DEFAULT_ALPHABET);
        assert_ne!(a.expose(), b.expose());
    }
}
