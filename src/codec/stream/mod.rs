//! Streaming encoders for base-backup tar parts.
//!
//! Owns the compressed byte stream of ONE tar part: a [`PartEncoder`] is a
//! `Write` that compresses what it is given into one self-contained unit, with
//! an explicit [`PartEncoder::finish`] and a running count of the compressed
//! bytes emitted so far ([`PartEncoder::compressed_len`]), which is what
//! Barman's `--max-archive-size` measures.
//!
//! Mirrors Barman 3.19.1's `CloudTarUploader` (`barman/cloud.py`) and
//! `clients/cloud_compression.py`: base backups support only gzip, bzip2,
//! lz4 and snappy, and each part is ONE gzip member (parallel, see
//! [`gzip`]), ONE bzip2 stream (level 9, as `tarfile` `w|bz2`), ONE LZ4 frame
//! (like `LZ4FrameCompressor(auto_flush=True)`: level 0, linked 64 KiB blocks,
//! no checksums, no content size: FLG 0x40, BD 0x40) or one snappy framing
//! stream (as python-snappy's `StreamCompressor`). Barman's readers are
//! streaming and single-member, so nothing else would restore.

pub mod gzip;

use std::io::{self, Write};

pub use gzip::{ParallelGzipWriter, tarfile_gzip_header};

use super::Compression;

/// A writer that counts the bytes passing through it.
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W> CountingWriter<W> {
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Default gzip level for base-backup parts (Barman itself uses 9, which is
/// much slower for a few percent).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

/// Default uncompressed block size of the parallel gzip encoder.
pub const DEFAULT_GZIP_BLOCK: usize = 1 << 20;

/// How a part is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Worker threads for gzip (≤ 1: compress on the caller's thread).
    pub threads: usize,
    /// gzip level, 1..=9.
    pub gzip_level: u32,
    /// Uncompressed bytes per parallel gzip block (at least 32 KiB).
    pub gzip_block_size: usize,
    /// The gzip header's MTIME (Python's `tarfile` writes the current time).
    pub gzip_mtime: u32,
}

impl StreamOptions {
    /// Level 6, 1 MiB blocks, the current time in the gzip header.
    pub fn new(threads: usize) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        StreamOptions {
            threads,
            gzip_level: DEFAULT_GZIP_LEVEL,
            gzip_block_size: DEFAULT_GZIP_BLOCK,
            gzip_mtime: now,
        }
    }
}

/// The compressed stream of one tar part.
pub enum PartEncoder<W: Write> {
    Plain(CountingWriter<W>),
    Gzip(ParallelGzipWriter<W>),
    Bzip2(Box<bzip2::write::BzEncoder<CountingWriter<W>>>),
    Lz4(lz4::Encoder<CountingWriter<W>>),
    Snappy(Box<snap::write::FrameEncoder<CountingWriter<W>>>),
}

/// A part encoder with the default options ([`StreamOptions::new`]).
/// xz and zstd are refused: Barman cannot restore such base backups.
pub fn part_encoder<W: Write>(
    compression: Option<Compression>,
    threads: usize,
    inner: W,
) -> io::Result<PartEncoder<W>> {
    PartEncoder::new(compression, &StreamOptions::new(threads), inner)
}

impl<W: Write> PartEncoder<W> {
    /// Starts a part on `inner`. Headers (gzip, LZ4 frame) are written at once.
    pub fn new(
        compression: Option<Compression>,
        options: &StreamOptions,
        inner: W,
    ) -> io::Result<Self> {
        Ok(match compression {
            None => PartEncoder::Plain(CountingWriter::new(inner)),
            Some(Compression::Gzip) => PartEncoder::Gzip(ParallelGzipWriter::new(
                inner,
                options.gzip_level,
                options.threads,
                options.gzip_block_size,
                options.gzip_mtime,
            )?),
            Some(Compression::Bzip2) => PartEncoder::Bzip2(Box::new(bzip2::write::BzEncoder::new(
                CountingWriter::new(inner),
                bzip2::Compression::best(),
            ))),
            Some(Compression::Lz4) => PartEncoder::Lz4(
                lz4::EncoderBuilder::new()
                    .level(0)
                    .block_size(lz4::BlockSize::Max64KB)
                    .block_mode(lz4::BlockMode::Linked)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                    .auto_flush(true)
                    .build(CountingWriter::new(inner))?,
            ),
            Some(Compression::Snappy) => PartEncoder::Snappy(Box::new(
                snap::write::FrameEncoder::new(CountingWriter::new(inner)),
            )),
            Some(c @ (Compression::Xz | Compression::Zstd)) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("base backups cannot be compressed with {}", c.name()),
                ));
            }
        })
    }

    /// Compressed bytes emitted to the inner writer so far. Encoders buffer
    /// (a block, a bzip2 run, 64 KiB for snappy), so this lags the input, as
    /// Barman's own count does.
    pub fn compressed_len(&self) -> u64 {
        match self {
            PartEncoder::Plain(w) => w.count(),
            PartEncoder::Gzip(w) => w.compressed_len(),
            PartEncoder::Bzip2(w) => w.get_ref().count(),
            PartEncoder::Lz4(w) => w.writer().count(),
            PartEncoder::Snappy(w) => w.get_ref().count(),
        }
    }

    /// Ends the gzip member / bzip2 stream / LZ4 frame / snappy stream and
    /// returns the inner writer (not flushed: that is the caller's business).
    pub fn finish(self) -> io::Result<W> {
        match self {
            PartEncoder::Plain(w) => Ok(w.into_inner()),
            PartEncoder::Gzip(w) => w.finish(),
            PartEncoder::Bzip2(w) => w.finish().map(CountingWriter::into_inner),
            PartEncoder::Lz4(w) => {
                let (w, result) = w.finish();
                result.map(|()| w.into_inner())
            }
            PartEncoder::Snappy(w) => w
                .into_inner()
                .map(CountingWriter::into_inner)
                .map_err(|e| e.into_error()),
        }
    }
}

impl<W: Write> Write for PartEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PartEncoder::Plain(w) => w.write(buf),
            PartEncoder::Gzip(w) => w.write(buf),
            PartEncoder::Bzip2(w) => w.write(buf),
            PartEncoder::Lz4(w) => w.write(buf),
            PartEncoder::Snappy(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            PartEncoder::Plain(w) => w.write_all(buf),
            PartEncoder::Gzip(w) => w.write_all(buf),
            PartEncoder::Bzip2(w) => w.write_all(buf),
            PartEncoder::Lz4(w) => w.write_all(buf),
            PartEncoder::Snappy(w) => w.write_all(buf),
        }
    }

    /// Flushes what is already compressed; it never ends a block or frame.
    /// (bzip2 and snappy have no way to do that, so they are left alone.)
    fn flush(&mut self) -> io::Result<()> {
        match self {
            PartEncoder::Plain(w) => w.flush(),
            PartEncoder::Gzip(w) => w.flush(),
            PartEncoder::Bzip2(_) | PartEncoder::Lz4(_) | PartEncoder::Snappy(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
