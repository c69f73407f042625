//! Authenticated encryption exactly as restic does it: AES-256 in counter
//! mode, then Poly1305-AES over the ciphertext, stored as
//! `IV || CIPHERTEXT || MAC`. The 16-byte IV doubles as the Poly1305 nonce.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Bytes added by [`Key::seal`]: 16 bytes IV plus 16 bytes MAC.
pub const CRYPTO_OVERHEAD: usize = 32;
const IV_LEN: usize = 16;
const MAC_LEN: usize = 16;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The repository master key (or a key derived from a password):
/// an AES-256 encryption key and the two Poly1305-AES keys `k` and `r`.
#[derive(Clone)]
pub struct Key {
    encrypt: [u8; 32],
    mac_k: [u8; 16],
    mac_r: [u8; 16],
}

impl std::fmt::Debug for Key {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The JSON form of a master key inside a key file's `data` field.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyJson {
    mac: MacJson,
    encrypt: String,
}

#[derive(Serialize, Deserialize)]
struct MacJson {
    k: String,
    r: String,
}

impl Key {
    /// A fresh random master key.
    pub(crate) fn random() -> Key {
        let mut b = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Key::from_kdf_output(&b)
    }

    /// Split 64 bytes of KDF output: 32 bytes encryption key, then `k`, then `r`.
    pub(crate) fn from_kdf_output(b: &[u8; 64]) -> Key {
        let mut encrypt = [0u8; 32];
        let mut mac_k = [0u8; 16];
        let mut mac_r = [0u8; 16];
        encrypt.copy_from_slice(&b[..32]);
        mac_k.copy_from_slice(&b[32..48]);
        mac_r.copy_from_slice(&b[48..]);
        Key {
            encrypt,
            mac_k,
            mac_r,
        }
    }

    pub(crate) fn to_json(&self) -> KeyJson {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        KeyJson {
            mac: MacJson {
                k: e.encode(self.mac_k),
                r: e.encode(self.mac_r),
            },
            encrypt: e.encode(self.encrypt),
        }
    }

    pub(crate) fn from_json(j: &KeyJson, what: &str) -> Result<Key> {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        fn fixed<const N: usize>(v: Vec<u8>, what: &str, field: &str) -> Result<[u8; N]> {
            v.try_into().map_err(|_| {
                Error::format(what, format!("master key field {field} has wrong length"))
            })
        }
        let dec = |s: &str, field: &str| {
            e.decode(s)
                .map_err(|err| Error::format(what, format!("master key field {field}: {err}")))
        };
        Ok(Key {
            encrypt: fixed(dec(&j.encrypt, "encrypt")?, what, "encrypt")?,
            mac_k: fixed(dec(&j.mac.k, "mac.k")?, what, "mac.k")?,
            mac_r: fixed(dec(&j.mac.r, "mac.r")?, what, "mac.r")?,
        })
    }

    /// Poly1305-AES: the one-time key is `r || AES128_k(nonce)`.
    fn mac(&self, nonce: &[u8; IV_LEN], ciphertext: &[u8]) -> [u8; MAC_LEN] {
        let aes = aes::Aes128::new(&self.mac_k.into());
        let mut s = aes::Block::clone_from_slice(nonce);
        aes.encrypt_block(&mut s);
        let mut otk = [0u8; 32];
        otk[..16].copy_from_slice(&self.mac_r); // poly1305 clamps r itself
        otk[16..].copy_from_slice(&s);
        let tag = poly1305::Poly1305::new(&otk.into()).compute_unpadded(ciphertext);
        tag.into()
    }

    /// Encrypt and authenticate `plaintext` with a fresh random IV.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let mut out = Vec::with_capacity(plaintext.len() + CRYPTO_OVERHEAD);
        out.extend_from_slice(&iv);
        out.extend_from_slice(plaintext);
        Aes256Ctr::new(&self.encrypt.into(), &iv.into()).apply_keystream(&mut out[IV_LEN..]);
        let tag = self.mac(&iv, &out[IV_LEN..]);
        out.extend_from_slice(&tag);
        out
    }

    /// Check the MAC and decrypt. `what` names the object for the error.
    ///
    /// # Errors
    /// [`Error::Format`] when the input is shorter than the overhead,
    /// [`Error::Mac`] when authentication fails.
    pub fn open(&self, sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        self.open_with(sealed, || what.to_string())
    }

    /// [`Key::open`] with the name built only when there is an error.
    ///
    /// # Errors
    /// As [`Key::open`].
    pub fn open_with(&self, sealed: &[u8], what: impl FnOnce() -> String) -> Result<Vec<u8>> {
        if sealed.len() < CRYPTO_OVERHEAD {
            return Err(Error::format(what(), "ciphertext shorter than iv and mac"));
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&sealed[..IV_LEN]);
        let ct = &sealed[IV_LEN..sealed.len() - MAC_LEN];
        let tag = &sealed[sealed.len() - MAC_LEN..];
        let expected = self.mac(&iv, ct);
        // Constant-time comparison: a MAC check must not leak timing.
        let diff = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(Error::Mac(what()));
        }
        let mut out = ct.to_vec();
        Aes256Ctr::new(&self.encrypt.into(), &iv.into()).apply_keystream(&mut out);
        Ok(out)
    }
}

/// scrypt parameters as recorded in a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// CPU/memory cost, a power of two.
    pub n: u64,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl KdfParams {
    /// restic's defaults as written by `restic init` (N=32768, r=8, p=4... restic
    /// calibrates; these are the values 0.14 records on typical hardware).
    pub const DEFAULT: KdfParams = KdfParams {
        n: 32768,
        r: 8,
        p: 4,
    };
    /// Cheap parameters for tests only: never use them for real data.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        n: 1024,
        r: 8,
        p: 1,
    };
    /// Upper bound on scrypt memory (128 * N * r bytes) accepted from a key
    /// file, so a hostile key file cannot make us allocate without bound.
    const MAX_MEMORY: u64 = 1 << 30;

    /// Derive 64 bytes from the password and salt.
    ///
    /// # Errors
    /// [`Error::Kdf`] for parameters scrypt rejects or that exceed the memory cap.
    pub(crate) fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Key> {
        if self.n < 2 || !self.n.is_power_of_two() {
            return Err(Error::Kdf(format!("N={} is not a power of two", self.n)));
        }
        // Per lane while it runs (128·r·N) and for all lanes' state (128·r·p).
        let mem = 128u64.saturating_mul(self.n).saturating_mul(self.r as u64);
        let state = 128u64.saturating_mul(self.r as u64) * u64::from(self.p);
        if mem > Self::MAX_MEMORY
            || state > Self::MAX_MEMORY
            || self.r == 0
            || self.p == 0
            || self.p > 64
        {
            return Err(Error::Kdf(format!(
                "parameters N={} r={} p={} exceed limits",
                self.n, self.r, self.p
            )));
        }
        let mut out = [0u8; 64];
        crate::scrypt::scrypt(
            password,
            salt,
            self.n as usize,
            self.r as usize,
            self.p as usize,
            &mut out,
        );
        Ok(Key::from_kdf_output(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_layout() {
        let k = Key::random();
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let s = k.seal(&pt);
            assert_eq!(s.len(), len + CRYPTO_OVERHEAD);
            assert_eq!(k.open(&s, "t").unwrap(), pt);
        }
    }

    #[test]
    fn tampering_is_detected_everywhere() {
        let k = Key::random();
        let s = k.seal(b"some secret text");
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 1;
            assert!(matches!(k.open(&t, "t"), Err(Error::Mac(_))), "byte {i}");
        }
        assert!(matches!(k.open(&s[..31], "t"), Err(Error::Format { .. })));
        assert!(matches!(Key::random().open(&s, "t"), Err(Error::Mac(_))));
    }

    #[test]
    fn kdf_rejects_hostile_parameters() {
        for (n, r, p) in [
            (1000, 8, 1),
            (0, 8, 1),
            (1 << 40, 8, 1),
            (1024, 8, 0),
            (1024, 0, 1),
            (2, 1 << 22, 64),
        ] {
            assert!(
                KdfParams { n, r, p }.derive(b"pw", b"salt").is_err(),
                "{n} {r} {p}"
            );
        }
        assert!(KdfParams::INSECURE_FAST.derive(b"pw", b"salt").is_ok());
    }
}
