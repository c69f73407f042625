//! The reader [`Backend::read_with`](super::Backend::read_with) hands its
//! consumer: a body that stops at the announced length, fails (never ends
//! quietly) when it is shorter, and remembers its own failure, so the
//! backend can tell a broken body (retry it, or report it as the read's
//! error) from the consumer's verdict on good bytes (return it as is).

use std::io::{self, Read};

use super::FileType;
use crate::error::{Error, Result};

/// A body being read, `length` bytes long when that was announced.
pub(crate) struct Body<R> {
    inner: R,
    /// Bytes still owed; `None` when the length was not announced.
    left: Option<u64>,
    /// Bytes handed out so far.
    read: u64,
    /// The first failure of the body itself; every later read repeats it,
    /// so a consumer cannot step over a gap in the data.
    failure: Option<io::Error>,
}

impl<R: Read> Body<R> {
    pub(crate) fn new(inner: R, length: Option<u64>) -> Body<R> {
        Body {
            inner,
            left: length,
            read: 0,
            failure: None,
        }
    }

    /// The body's failure, if it had one: whatever the consumer made of
    /// it, the read failed.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failure.take()
    }

    /// The reader underneath (an object store's stream keeps its own
    /// error, which says whether retrying may help).
    pub(crate) fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        let again = io::Error::new(e.kind(), e.to_string());
        self.failure = Some(e);
        again
    }
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failure {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        let want = match self.left {
            Some(0) => return Ok(0),
            Some(left) => out.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => out.len(),
        };
        if want == 0 {
            return Ok(0);
        }
        match self.inner.read(&mut out[..want]) {
            Ok(0) => match self.left {
                Some(left) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "body ended after {} of {} bytes",
                            self.read,
                            self.read + left
                        ),
                    );
                    Err(self.fail(e))
                }
                None => Ok(0),
            },
            Ok(n) => {
                self.read += n as u64;
                if let Some(left) = &mut self.left {
                    *left -= n as u64;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// [`Backend::read_with`](super::Backend::read_with) over bytes already in
/// memory (the trait's default, the memory backend): the first `length`
/// of them, an error when there are fewer.
pub(crate) fn from_memory(
    t: FileType,
    name: &str,
    data: &[u8],
    length: Option<u64>,
    consumer: &mut dyn FnMut(&mut dyn Read) -> Result<()>,
) -> Result<()> {
    let data = match length {
        None => data,
        Some(len) => usize::try_from(len)
            .ok()
            .and_then(|len| data.get(..len))
            .ok_or_else(|| Error::Backend {
                op: "read",
                what: format!("{}/{name}", t.dir()),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("only {} of {len} bytes stored", data.len()),
                ),
            })?,
    };
    consumer(&mut io::Cursor::new(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `data` a few bytes at a time, then fails or ends.
    struct Trickle<'a>(&'a [u8], Option<io::ErrorKind>);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return match self.1 {
                    Some(kind) => Err(io::Error::new(kind, "connection reset")),
                    None => Ok(0),
                };
            }
            let n = out.len().min(self.0.len()).min(3);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(body: &mut Body<Trickle<'_>>) -> (Vec<u8>, Option<io::ErrorKind>) {
        let mut got = Vec::new();
        let e = body.read_to_end(&mut got).err().map(|e| e.kind());
        (got, e)
    }

    #[test]
    fn a_body_stops_at_its_length_and_a_short_one_is_an_error() {
        // Longer than announced: the rest is not handed out.
        let mut b = Body::new(Trickle(b"0123456789", None), Some(4));
        assert_eq!(read_all(&mut b), (b"0123".to_vec(), None));
        assert!(b.take_failure().is_none());

        // Shorter: an error that stays, never a quiet end.
        let mut b = Body::new(Trickle(b"0123", None), Some(6));
        let (got, e) = read_all(&mut b);
        assert_eq!(
            (got.as_slice(), e),
            (&b"0123"[..], Some(io::ErrorKind::UnexpectedEof))
        );
        assert!(b.read(&mut [0; 8]).is_err(), "the failure repeats");
        let failure = b.take_failure().unwrap();
        assert!(failure.to_string().contains("4 of 6 bytes"), "{failure}");

        // No length: the body's own end.
        let mut b = Body::new(Trickle(b"0123", None), None);
        assert_eq!(read_all(&mut b), (b"0123".to_vec(), None));

        // A broken body is remembered even when the consumer ignores it.
        let mut b = Body::new(Trickle(b"01", Some(io::ErrorKind::ConnectionReset)), None);
        let mut buf = [0; 8];
        assert_eq!(b.read(&mut buf).unwrap(), 2);
        assert!(b.read(&mut buf).is_err());
        assert_eq!(
            b.take_failure().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn bytes_in_memory_are_cut_to_the_length_or_refused() {
        let read = |length| {
            let mut got = Vec::new();
            from_memory(FileType::Pack, "ab", b"0123", length, &mut |r| {
                got.clear();
                r.read_to_end(&mut got).unwrap();
                Ok(())
            })
            .map(|()| got)
        };
        assert_eq!(read(Some(2)).unwrap(), b"01");
        assert_eq!(read(None).unwrap(), b"0123");
        let e = read(Some(5)).unwrap_err();
        assert!(e.to_string().contains("only 4 of 5 bytes stored"), "{e}");
    }
}
