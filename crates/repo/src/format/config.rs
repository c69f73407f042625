//! The repository `config` file.

use serde::{Deserialize, Serialize};

use crate::chunker::Polynomial;
use crate::error::{Error, Result};

/// The decrypted `config` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Repository format version: 1 or 2.
    pub version: u32,
    /// 32 random bytes in hex, identifying the repository.
    pub id: String,
    /// The chunker's polynomial, hex without prefix.
    pub chunker_polynomial: String,
}

impl Config {
    /// A new version 2 config with a random id and polynomial.
    pub(crate) fn new_v2() -> Config {
        Config {
            version: 2,
            id: crate::id::Id::random().to_hex(),
            chunker_polynomial: format!("{:x}", Polynomial::random().0),
        }
    }

    /// Parse and validate.
    pub(crate) fn parse(plain: &[u8]) -> Result<Config> {
        let c: Config = serde_json::from_slice(plain).map_err(|e| Error::json("config", e))?;
        if c.version != 1 && c.version != 2 {
            return Err(Error::UnsupportedVersion(c.version));
        }
        c.polynomial()?;
        Ok(c)
    }

    /// The chunker polynomial.
    pub(crate) fn polynomial(&self) -> Result<Polynomial> {
        u64::from_str_radix(&self.chunker_polynomial, 16)
            .map(Polynomial)
            .map_err(|e| Error::format("config", format!("chunker_polynomial: {e}")))
    }
}
