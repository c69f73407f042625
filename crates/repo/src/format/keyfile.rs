//! Key files (`keys/<id>`): plain JSON holding scrypt parameters, a salt and
//! the master key encrypted with the password-derived key.

use base64::Engine;
use chrono::{DateTime, FixedOffset};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::{KdfParams, Key, KeyJson};
use crate::error::{Error, Result};

/// Key files are small; refuse to parse anything large.
pub(crate) const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyFile {
    #[serde(with = "super::time")]
    created: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    hostname: String,
    kdf: String,
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
    salt: String,
    data: String,
}

impl KeyFile {
    /// Encrypt `master` under `password`.
    pub(crate) fn create(master: &Key, password: &[u8], params: KdfParams) -> Result<Vec<u8>> {
        let mut salt = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let user_key = params.derive(password, &salt)?;
        let json =
            serde_json::to_vec(&master.to_json()).map_err(|e| Error::json("master key", e))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let kf = KeyFile {
            created: super::time::now(),
            username: crate::current_user().2,
            hostname: crate::hostname(),
            kdf: "scrypt".into(),
            n: params.n,
            r: params.r,
            p: params.p,
            salt: b64.encode(salt),
            data: b64.encode(user_key.seal(&json)),
        };
        serde_json::to_vec(&kf).map_err(|e| Error::json("key file", e))
    }

    /// Decrypt the master key in `bytes` with `password`.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] when the MAC does not verify, format errors
    /// for malformed files.
    pub(crate) fn open(bytes: &[u8], password: &[u8], what: &str) -> Result<Key> {
        let kf: KeyFile = serde_json::from_slice(bytes).map_err(|e| Error::json(what, e))?;
        if kf.kdf != "scrypt" {
            return Err(Error::format(what, format!("unknown kdf {:?}", kf.kdf)));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64
            .decode(&kf.salt)
            .map_err(|e| Error::format(what, format!("salt: {e}")))?;
        let data = b64
            .decode(&kf.data)
            .map_err(|e| Error::format(what, format!("data: {e}")))?;
        let user_key = KdfParams {
            n: kf.n,
            r: kf.r,
            p: kf.p,
        }
        .derive(password, &salt)?;
        let plain = match user_key.open(&data, what) {
            Ok(p) => p,
            Err(Error::Mac(_)) => return Err(Error::WrongPassword),
            Err(e) => return Err(e),
        };
        let kj: KeyJson = serde_json::from_slice(&plain).map_err(|e| Error::json(what, e))?;
        Key::from_json(&kj, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_open() {
        let master = Key::random();
        let f = KeyFile::create(&master, b"pw", KdfParams::INSECURE_FAST).unwrap();
        let k = KeyFile::open(&f, b"pw", "k").unwrap();
        let sealed = master.seal(b"x");
        assert_eq!(k.open(&sealed, "t").unwrap(), b"x");
        assert!(matches!(
            KeyFile::open(&f, b"nope", "k"),
            Err(Error::WrongPassword)
        ));
        assert!(KeyFile::open(b"{}", b"pw", "k").is_err());
        assert!(KeyFile::open(b"\xff", b"pw", "k").is_err());
    }
}
