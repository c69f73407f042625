//! Just enough DER to read an X.509 certificate's `notAfter`: a whole X.509
//! parser would be a large dependency for one timestamp. The input is
//! untrusted (a server sent it), so every read is bounds-checked.

/// One TLV: (tag, contents, rest after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0_usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` as unix seconds, or None when `cert` is not
/// a DER certificate this reader understands.
pub fn not_after_unix(cert: &[u8]) -> Option<i64> {
    let (tag, certificate, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, not_after, _) = tlv(after_not_before)?;
    parse_time(tag, std::str::from_utf8(not_after).ok()?)
}

fn parse_time(tag: u8, s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let full = match (tag, s.len()) {
        // RFC 5280: two-digit years 50..99 are 19xx, 00..49 are 20xx.
        (UTC_TIME, 12) => {
            let yy: i32 = s.get(..2)?.parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{s}")
        }
        (GENERALIZED_TIME, 14) => s.to_string(),
        _ => return None,
    };
    let dt = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    Some(dt.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal certificate-shaped structure with the given validity times.
    fn cert(not_before: (u8, &str), not_after: (u8, &str)) -> Vec<u8> {
        fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if body.len() < 0x80 {
                out.push(body.len() as u8);
            } else {
                out.push(0x82);
                out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(body);
            out
        }
        let mut validity = wrap(not_before.0, not_before.1.as_bytes());
        validity.extend(wrap(not_after.0, not_after.1.as_bytes()));
        let mut tbs = wrap(0xa0, &wrap(0x02, &[2]));
        tbs.extend(wrap(0x02, &[1, 2, 3]));
        tbs.extend(wrap(SEQUENCE, &wrap(0x06, &[1, 2])));
        tbs.extend(wrap(SEQUENCE, &[0u8; 200]));
        tbs.extend(wrap(SEQUENCE, &validity));
        tbs.extend(wrap(SEQUENCE, &[]));
        let mut c = wrap(SEQUENCE, &tbs);
        c = wrap(
            SEQUENCE,
            &[c, wrap(SEQUENCE, &[]), wrap(0x03, &[0])].concat(),
        );
        c
    }

    #[test]
    fn reads_not_after() {
        let check = |after: (u8, &str), expected: Option<i64>| {
            let c = cert((UTC_TIME, "240101000000Z"), after);
            assert_eq!(not_after_unix(&c), expected, "{after:?}");
        };
        check((UTC_TIME, "250101000000Z"), Some(1_735_689_600));
        check((GENERALIZED_TIME, "20500101000000Z"), Some(2_524_608_000));
        check((UTC_TIME, "990101000000Z"), Some(915_148_800));
        check((UTC_TIME, "2501010000Z"), None);
        check((0x04, "250101000000Z"), None);
    }

    #[test]
    fn truncated_input_is_none() {
        let c = cert((UTC_TIME, "240101000000Z"), (UTC_TIME, "250101000000Z"));
        for n in 0..c.len() - 1 {
            let _ = not_after_unix(&c[..n]);
        }
        assert_eq!(not_after_unix(&[]), None);
        assert_eq!(not_after_unix(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
