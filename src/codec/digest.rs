//! Content digests: the checksum of an object's *uncompressed* content that
//! barnacle stores with every object it pushes, compares before it would
//! write over a name, and checks on restore.
//!
//! New objects carry a BLAKE3 digest. Objects pushed by barnacle builds
//! before `barnacle-blake3` carry a SHA-256 one (`barnacle-sha256`), which is
//! still honoured: compared by hashing the local file with SHA-256, checked on
//! restore with SHA-256. Why BLAKE3: both are cryptographic (a match means the
//! same content, the guarantee "never overwrite with different content" rests
//! on), but on a 16 MiB segment SHA-256 took 11 to 14 ms of CPU with the
//! SHA extensions against 2.5 ms for BLAKE3 (one thread, AVX-512; measured in
//! `benches/codec.rs`, `digest/`) — a fifth of the sidecar's CPU per segment at
//! gzip level 6, and a step on the critical path of every restore.

use std::fmt;
use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// The hash a [`ContentDigest`] was computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// What barnacle records on every object it pushes.
    Blake3,
    /// What barnacle recorded before BLAKE3; read, compared and checked, never written.
    Sha256,
}

impl DigestAlgorithm {
    /// The algorithm of every digest barnacle records now.
    pub const RECORDED: DigestAlgorithm = DigestAlgorithm::Blake3;
    /// Every algorithm, the one preferred when an object has several first.
    pub const ALL: [DigestAlgorithm; 2] = [DigestAlgorithm::Blake3, DigestAlgorithm::Sha256];

    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Blake3 => "BLAKE3",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// The lower-case name the stores record a digest under (`barnacle-TAG`).
    pub fn tag(self) -> &'static str {
        match self {
            DigestAlgorithm::Blake3 => "blake3",
            DigestAlgorithm::Sha256 => "sha256",
        }
    }

    /// A hasher of this algorithm.
    pub fn hasher(self) -> ContentHasher {
        match self {
            DigestAlgorithm::Blake3 => ContentHasher::Blake3(Box::default()),
            DigestAlgorithm::Sha256 => ContentHasher::Sha256(Sha256::new()),
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> ContentDigest {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }
}

/// A digest of uncompressed content: its algorithm and its lower-case hex value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    pub algorithm: DigestAlgorithm,
    pub hex: String,
}

impl ContentDigest {
    pub fn new(algorithm: DigestAlgorithm, hex: impl Into<String>) -> ContentDigest {
        ContentDigest {
            algorithm,
            hex: hex.into(),
        }
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm.name(), self.hex)
    }
}

/// An incremental hash of one of the [`DigestAlgorithm`]s.
#[derive(Clone)]
pub enum ContentHasher {
    // Boxed: the BLAKE3 hasher keeps a stack of chaining values (1.9 KB).
    Blake3(Box<blake3::Hasher>),
    Sha256(Sha256),
}

impl ContentHasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            ContentHasher::Blake3(h) => {
                h.update(data);
            }
            ContentHasher::Sha256(h) => h.update(data),
        }
    }

    pub fn finish(self) -> ContentDigest {
        match self {
            ContentHasher::Blake3(h) => {
                ContentDigest::new(DigestAlgorithm::Blake3, h.finalize().to_hex().as_str())
            }
            ContentHasher::Sha256(h) => {
                ContentDigest::new(DigestAlgorithm::Sha256, hex::encode(h.finalize()))
            }
        }
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    DigestAlgorithm::Sha256.digest(data).hex
}

/// Lower-case hex BLAKE3 of `data`.
pub fn blake3_hex(data: &[u8]) -> String {
    DigestAlgorithm::Blake3.digest(data).hex
}

/// A writer that counts what it forwards and, when asked to, hashes it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Option<ContentHasher>,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes with `algorithm`; `None` only counts (nothing to check against).
    pub fn new(inner: W, algorithm: Option<DigestAlgorithm>) -> Self {
        HashingWriter {
            inner,
            hasher: algorithm.map(DigestAlgorithm::hasher),
            len: 0,
        }
    }

    /// The writer, the digest (if one was asked for) and the number of bytes written.
    pub fn finish(self) -> (W, Option<ContentDigest>, u64) {
        (self.inner, self.hasher.map(ContentHasher::finish), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_give_their_reference_digests() {
        // FIPS 180-2 and the BLAKE3 reference implementation's test vectors.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            blake3_hex(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hashes_what_passes_through_in_any_pieces() {
        for algorithm in DigestAlgorithm::ALL {
            let mut w = HashingWriter::new(Vec::new(), Some(algorithm));
            w.write_all(b"ab").unwrap();
            w.write_all(b"c").unwrap();
            let (out, digest, len) = w.finish();
            assert_eq!(out, b"abc");
            assert_eq!(len, 3);
            assert_eq!(digest, Some(algorithm.digest(b"abc")));
        }
        assert_ne!(blake3_hex(b"abc"), sha256_hex(b"abc"));
    }

    #[test]
    fn without_an_algorithm_it_only_counts() {
        let mut w = HashingWriter::new(Vec::new(), None);
        w.write_all(b"abc").unwrap();
        let (_, digest, len) = w.finish();
        assert_eq!((digest, len), (None, 3));
    }
}
