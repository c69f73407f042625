//! An in-memory backend for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Backend, FileType};
use crate::error::{Error, Result};

/// Keeps every file in a map. Cheap to create, never touches the disk.
#[derive(Default)]
pub struct MemoryBackend {
    files: Mutex<BTreeMap<(u8, String), Vec<u8>>>,
}

fn key(t: FileType, name: &str) -> (u8, String) {
    (
        t as u8,
        if t == FileType::Config {
            String::new()
        } else {
            name.to_string()
        },
    )
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u8, String), Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (each operation is one insert or remove), so poisoning is ignored.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mutate a stored file in place (fault injection in tests).
    pub fn corrupt(&self, t: FileType, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let mut m = self.map();
        let v = m
            .get_mut(&key(t, name))
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        f(v);
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        "memory".into()
    }
    fn create(&self) -> Result<()> {
        Ok(())
    }
    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
        Ok(self
            .map()
            .iter()
            .filter(|((tt, _), _)| *tt == t as u8)
            .map(|((_, n), v)| (n.clone(), v.len() as u64))
            .collect())
    }
    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
        self.map()
            .get(&key(t, name))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("{}/{name}", t.dir())))
    }
    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        let m = self.map();
        let v = m
            .get(&key(t, name))
            .ok_or_else(|| Error::NotFound(format!("{}/{name}", t.dir())))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(length as usize);
        v.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
            Error::format(
                format!("{}/{name}", t.dir()),
                format!("range {offset}+{length} past end"),
            )
        })
    }
    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
        self.map().insert(key(t, name), data.to_vec());
        Ok(())
    }
    fn remove(&self, t: FileType, name: &str) -> Result<()> {
        self.map().remove(&key(t, name));
        Ok(())
    }
    fn stat(&self, t: FileType, name: &str) -> Result<u64> {
        self.map()
            .get(&key(t, name))
            .map(|v| v.len() as u64)
            .ok_or_else(|| Error::NotFound(format!("{}/{name}", t.dir())))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_backend_keeps_the_contract() {
        super::super::tests::check_backend(&super::MemoryBackend::new());
    }
}
