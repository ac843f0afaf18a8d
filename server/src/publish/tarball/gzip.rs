//! The tarball's gzip stream, read block by block with bounded decompression: exactly one gzip
//! member, nothing after it.

use std::io::Read;

use flate2::bufread::GzDecoder;

use super::TarballError;
use super::header::BLOCK;

/// Decompression stops after this many bytes: a gzip bomb cannot exhaust memory or time.
const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
/// node-tar aborts an archive that expands more than this many times.
const MAX_RATIO: u64 = 1000;

pub(super) struct Stream<'a> {
    decoder: GzDecoder<&'a [u8]>,
    unpacked: u64,
    limit: u64,
}

impl<'a> Stream<'a> {
    pub fn open(tarball: &'a [u8]) -> Result<Self, TarballError> {
        if !tarball.starts_with(&[0x1f, 0x8b]) {
            return Err(TarballError::malformed(
                "the tarball is not gzip-compressed: npm publishes gzipped tar archives (.tgz)",
            ));
        }
        let ratio_limit = (tarball.len() as u64).saturating_mul(MAX_RATIO);
        Ok(Stream {
            decoder: GzDecoder::new(tarball),
            unpacked: 0,
            limit: ratio_limit.min(MAX_UNPACKED_BYTES),
        })
    }

    /// Reads until `buf` is full or the stream ends; returns how many bytes were read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, TarballError> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.decoder.read(&mut buf[filled..]).map_err(|e| {
                TarballError::malformed(format!("the tarball's gzip data is corrupt or truncated: {e}"))
            })?;
            if n == 0 {
                break;
            }
            filled += n;
            self.unpacked += n as u64;
            if self.unpacked > self.limit {
                return Err(if self.limit == MAX_UNPACKED_BYTES {
                    TarballError::malformed(format!(
                        "the tarball unpacks to more than {} MiB",
                        MAX_UNPACKED_BYTES >> 20
                    ))
                } else {
                    TarballError::malformed(format!(
                        "the tarball expands more than {MAX_RATIO}-fold, which npm refuses to unpack"
                    ))
                });
            }
        }
        Ok(filled)
    }

    /// The next block; `false` when the stream ends (a partial last block must be zeros).
    pub fn next_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, TarballError> {
        match self.fill(block)? {
            BLOCK => Ok(true),
            n if block[..n].iter().all(|&b| b == 0) => Ok(false),
            _ => Err(TarballError::ambiguous("the tarball ends with a partial block of data")),
        }
    }

    /// An entry's data (`size` bytes, then padding to a whole block).
    pub fn read_body(&mut self, size: u64, what: &str) -> Result<Vec<u8>, TarballError> {
        let len = usize::try_from(size).map_err(|_| truncated(what))?;
        let mut body = vec![0; len];
        if self.fill(&mut body)? != len {
            return Err(truncated(what));
        }
        self.skip(padding(size), what)?;
        Ok(body)
    }

    /// The SHA-256 of an entry's data (`size` bytes, read in chunks), skipping its padding.
    pub fn hash_body(&mut self, size: u64, what: &str) -> Result<[u8; 32], TarballError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut scratch = [0u8; 8192];
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(scratch.len() as u64) as usize;
            if self.fill(&mut scratch[..want])? != want {
                return Err(truncated(what));
            }
            hasher.update(&scratch[..want]);
            remaining -= want as u64;
        }
        self.skip(padding(size), what)?;
        Ok(hasher.finalize().into())
    }

    /// Skips an entry's data and padding.
    pub fn skip_body(&mut self, size: u64, what: &str) -> Result<(), TarballError> {
        self.skip(size + padding(size), what)
    }

    fn skip(&mut self, mut remaining: u64, what: &str) -> Result<(), TarballError> {
        let mut scratch = [0u8; 8192];
        while remaining > 0 {
            let want = remaining.min(scratch.len() as u64) as usize;
            if self.fill(&mut scratch[..want])? != want {
                return Err(truncated(what));
            }
            remaining -= want as u64;
        }
        Ok(())
    }

    /// After an end-of-archive block: everything left in the stream must be zeros.
    pub fn expect_zeros(&mut self) -> Result<(), TarballError> {
        let mut scratch = [0u8; 8192];
        loop {
            let n = self.fill(&mut scratch)?;
            if scratch[..n].iter().any(|&b| b != 0) {
                return Err(TarballError::ambiguous(
                    "the tarball has data after its end-of-archive marker, which some readers unpack",
                ));
            }
            if n < scratch.len() {
                return Ok(());
            }
        }
    }

    /// Once the stream has ended: nothing may follow the gzip member.
    pub fn finish(mut self) -> Result<(), TarballError> {
        if self.fill(&mut [0u8; 1])? != 0 {
            return Err(TarballError::ambiguous("the tarball has data after its last entry"));
        }
        let rest = self.decoder.into_inner();
        if rest.is_empty() {
            Ok(())
        } else if rest.starts_with(&[0x1f, 0x8b]) {
            Err(TarballError::ambiguous(
                "the tarball holds a second gzip stream after the first, which some readers unpack too",
            ))
        } else {
            Err(TarballError::ambiguous(format!(
                "the tarball has {} bytes after its gzip stream",
                rest.len()
            )))
        }
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn truncated(what: &str) -> TarballError {
    TarballError::malformed(format!("the tarball is truncated inside {what}"))
}
