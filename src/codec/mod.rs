//! The six compressions Barman's cloud tools know, chosen by key suffix.
//!
//! | algo   | suffix    | WAL levels low/medium/high (range) |
//! |--------|-----------|------------------------------------|
//! | gzip   | `.gz`     | 1 / 6 / 9 (1..=9)                  |
//! | bzip2  | `.bz2`    | 1 / 5 / 9 (1..=9)                  |
//! | xz     | `.xz`     | 1 / 3 / 5 (1..=9)                  |
//! | snappy | `.snappy` | none                               |
//! | zstd   | `.zst`    | 1 / 4 / 9 (-22..=22)               |
//! | lz4    | `.lz4`    | 0 / 6 / 10 (0..=16)                |
//!
//! Barman detects the compression of an object by its key suffix only, never by
//! magic bytes; so do we ([`Compression::from_key`]). Formats: gzip RFC 1952 (one
//! member; readers here also accept several), a bzip2 stream, an `.xz` container,
//! a zstd frame, an LZ4 *frame* and the snappy *framing* format.
//!
//! Nothing here does I/O beyond the `Read`/`Write` it is handed.

mod digest;
mod gzip_reader;
mod level;
pub mod parallel_gzip;
pub mod stream;

use std::cell::RefCell;
use std::io::{self, Read, Write};

use bytes::Bytes;

pub use digest::{
    ContentDigest, ContentHasher, DigestAlgorithm, HashingWriter, blake3_hex, sha256_hex,
};
pub use gzip_reader::GzipReader;
pub use level::{CompressionLevel, LevelParseError};

/// A compression algorithm of Barman's cloud tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Snappy,
    Zstd,
    Lz4,
}

impl Compression {
    /// All six, in the order Barman tries suffixes when it reads a key.
    pub const ALL: [Compression; 6] = [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Snappy,
        Compression::Zstd,
        Compression::Lz4,
    ];

    /// The key suffix, dot included.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Xz => ".xz",
            Compression::Snappy => ".snappy",
            Compression::Zstd => ".zst",
            Compression::Lz4 => ".lz4",
        }
    }

    /// Barman's name for it (`backup.info`, messages).
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    /// The compression a key's suffix denotes, and the key without it.
    /// No known suffix means the object is stored as is.
    pub fn from_key(key: &str) -> (Option<Compression>, &str) {
        for c in Self::ALL {
            if let Some(stem) = key.strip_suffix(c.suffix()) {
                return (Some(c), stem);
            }
        }
        (None, key)
    }

    /// Barman's `(low, medium, high, min, max)` levels for WAL; `None` for snappy.
    fn levels(self) -> Option<(i32, i32, i32, i32, i32)> {
        match self {
            Compression::Gzip => Some((1, 6, 9, 1, 9)),
            Compression::Bzip2 => Some((1, 5, 9, 1, 9)),
            Compression::Xz => Some((1, 3, 5, 1, 9)),
            Compression::Zstd => Some((1, 4, 9, -22, 22)),
            Compression::Lz4 => Some((0, 6, 10, 0, 16)),
            Compression::Snappy => None,
        }
    }

    /// The numeric level Barman would use for `level` (`None` = medium);
    /// integers out of range are clamped, as Barman does. Snappy has no level: 0.
    pub fn resolve_level(self, level: Option<CompressionLevel>) -> i32 {
        let Some((low, medium, high, min, max)) = self.levels() else {
            return 0;
        };
        match level {
            None | Some(CompressionLevel::Medium) => medium,
            Some(CompressionLevel::Low) => low,
            Some(CompressionLevel::High) => high,
            Some(CompressionLevel::Number(n)) => n.clamp(min, max),
        }
    }

    /// True when `level` had to be clamped into this algorithm's range.
    pub fn level_out_of_range(self, level: Option<CompressionLevel>) -> bool {
        match (self.levels(), level) {
            (Some((_, _, _, min, max)), Some(CompressionLevel::Number(n))) => n < min || n > max,
            _ => false,
        }
    }
}

/// What streamed compression reads, inspects and compresses at a time.
pub const STREAM_BLOCK: usize = parallel_gzip::DEFAULT_BLOCK_SIZE;

/// Where compressed output goes, a chunk at a time and in order: kept in
/// memory (`Vec<Bytes>`, chunks to upload without copying them together) or
/// written elsewhere as it is produced (a push's staging file).
pub trait ChunkSink {
    /// Takes the next chunk of output.
    fn put(&mut self, chunk: Vec<u8>) -> io::Result<()>;
}

impl ChunkSink for Vec<Bytes> {
    fn put(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        if !chunk.is_empty() {
            self.push(Bytes::from(chunk));
        }
        Ok(())
    }
}

/// Compresses everything `input` yields at a resolved level (`None`: stores it
/// as is), [`STREAM_BLOCK`] at a time, handing each block read to `inspect`
/// first (the caller hashes it) and the output to `out` as it is produced.
/// gzip uses up to `threads` threads and still yields one member. `len` is the
/// length the caller expects to read (the LZ4 frame header records it);
/// reading another length is an error. Memory is a few blocks plus what `out`
/// keeps (gzip and no compression hand over output block by block; the other
/// codecs hand over their whole output at the end).
pub fn compress_stream(
    input: &mut dyn Read,
    compression: Option<Compression>,
    level: i32,
    threads: usize,
    len: u64,
    inspect: &mut dyn FnMut(&[u8]),
    out: &mut dyn ChunkSink,
) -> io::Result<()> {
    match compression {
        None => {
            // No spare buffers: every block read becomes a chunk, uncopied.
            let no_spares = RefCell::new(Vec::new());
            let read = for_each_block(input, STREAM_BLOCK, inspect, &no_spares, |block, _| {
                out.put(block)
            })?;
            expect_length(read, len)
        }
        Some(Compression::Gzip) => {
            let level = level.clamp(1, 9) as u32;
            let read =
                parallel_gzip::compress_reader(input, level, threads, STREAM_BLOCK, inspect, out)?;
            expect_length(read, len)
        }
        Some(Compression::Bzip2) => {
            let level = bzip2::Compression::new(level.clamp(1, 9) as u32);
            let enc = bzip2::write::BzEncoder::new(Vec::new(), level);
            through_encoder(input, len, inspect, out, enc, |enc| enc.finish())
        }
        Some(Compression::Xz) => {
            let enc = liblzma::write::XzEncoder::new(Vec::new(), level.clamp(0, 9) as u32);
            through_encoder(input, len, inspect, out, enc, |enc| enc.finish())
        }
        Some(Compression::Zstd) => {
            let enc = zstd::stream::write::Encoder::new(Vec::new(), level)?;
            through_encoder(input, len, inspect, out, enc, |enc| enc.finish())
        }
        Some(Compression::Lz4) => {
            let enc = lz4::EncoderBuilder::new()
                .level(level.clamp(0, 16) as u32)
                .content_size(len)
                .checksum(lz4::ContentChecksum::ChecksumEnabled)
                .build(Vec::new())?;
            through_encoder(input, len, inspect, out, enc, |enc| {
                let (out, result) = enc.finish();
                result.map(|()| out)
            })
        }
        Some(Compression::Snappy) => {
            let enc = snap::write::FrameEncoder::new(Vec::new());
            through_encoder(input, len, inspect, out, enc, |enc| {
                enc.into_inner().map_err(|e| e.into_error())
            })
        }
    }
}

/// [`compress_stream`] through a one-thread streaming encoder: every block
/// read is inspected and written to `encoder`, the length checked before
/// `finish` (LZ4 refuses a frame whose recorded length is wrong), and what
/// `finish` returns goes to `out` as one chunk.
fn through_encoder<W: Write>(
    input: &mut dyn Read,
    len: u64,
    inspect: &mut dyn FnMut(&[u8]),
    out: &mut dyn ChunkSink,
    mut encoder: W,
    finish: impl FnOnce(W) -> io::Result<Vec<u8>>,
) -> io::Result<()> {
    let spare = RefCell::new(Vec::new());
    let read = for_each_block(input, STREAM_BLOCK, inspect, &spare, |block, _| {
        encoder.write_all(&block)?;
        spare.borrow_mut().push(block);
        Ok(())
    })?;
    expect_length(read, len)?;
    out.put(finish(encoder)?)
}

/// An error unless `read`, the bytes read, is the `expected` length.
fn expect_length(read: u64, expected: u64) -> io::Result<()> {
    if read == expected {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "read {read} bytes where {expected} were expected: the file changed while it was read"
            ),
        ))
    }
}

/// Reads `input` in blocks of `block_size` (the last may be shorter, or
/// empty for an empty input), hands each to `inspect` then to `each` with
/// whether it is the last; returns the number of bytes read. Blocks are read
/// into the buffers `each` puts back in `spare` when there are some.
fn for_each_block(
    input: &mut dyn Read,
    block_size: usize,
    inspect: &mut dyn FnMut(&[u8]),
    spare: &RefCell<Vec<Vec<u8>>>,
    mut each: impl FnMut(Vec<u8>, bool) -> io::Result<()>,
) -> io::Result<u64> {
    let read_block = |input: &mut dyn Read| -> io::Result<Vec<u8>> {
        let mut block = spare.borrow_mut().pop().unwrap_or_default();
        block.clear();
        block.reserve_exact(block_size);
        input.take(block_size as u64).read_to_end(&mut block)?;
        Ok(block)
    };
    let mut total = 0u64;
    let mut current = read_block(input)?;
    loop {
        inspect(&current);
        total += current.len() as u64;
        let next = if current.len() == block_size {
            read_block(input)?
        } else {
            Vec::new()
        };
        let last = next.is_empty();
        each(current, last)?;
        if last {
            return Ok(total);
        }
        current = next;
    }
}

/// Reads into `buf` until it is full or `input` ends; returns how much was read.
pub fn fill(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Compresses a whole in-memory buffer at a resolved level: [`compress_stream`]
/// over it, the chunks put together.
pub fn compress_buffer(
    input: &[u8],
    compression: Compression,
    level: i32,
    threads: usize,
) -> io::Result<Vec<u8>> {
    let len = input.len() as u64;
    let mut chunks: Vec<Bytes> = Vec::new();
    compress_stream(
        &mut &input[..],
        Some(compression),
        level,
        threads,
        len,
        &mut |_| {},
        &mut chunks,
    )?;
    Ok(chunks.concat())
}

/// A streaming decoder for `compression` over `reader` (`None`: the bytes as
/// stored). gzip, bzip2, xz and zstd accept concatenated members/streams/frames,
/// as Python's readers do.
pub fn decoder<'a, R: Read + 'a>(
    compression: Option<Compression>,
    reader: R,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        None => Box::new(reader),
        Some(Compression::Gzip) => Box::new(GzipReader::new(reader)),
        Some(Compression::Bzip2) => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        Some(Compression::Xz) => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::new(reader)?),
        Some(Compression::Lz4) => Box::new(lz4::Decoder::new(reader)?),
        Some(Compression::Snappy) => Box::new(snap::read::FrameDecoder::new(reader)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Something WAL-like: runs of zeros, repeated records, some noise.
        let mut v = Vec::new();
        for i in 0u32..40_000 {
            v.extend_from_slice(&i.to_le_bytes());
            v.extend_from_slice(b"INSERT INTO pgbench_history VALUES ");
            v.extend(std::iter::repeat_n(0u8, (i % 97) as usize));
        }
        v
    }

    #[test]
    fn every_codec_round_trips_at_every_named_level() {
        let input = sample();
        for c in Compression::ALL {
            for level in [
                CompressionLevel::Low,
                CompressionLevel::Medium,
                CompressionLevel::High,
            ] {
                let out = compress_buffer(&input, c, c.resolve_level(Some(level)), 2).unwrap();
                assert!(out.len() < input.len(), "{c:?} did not compress");
                let mut back = Vec::new();
                decoder(Some(c), &out[..])
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input, "{c:?} {level:?}");
            }
        }
    }

    #[test]
    fn streamed_compression_sees_every_byte_once_and_checks_the_length() {
        let input = sample();
        let len = input.len() as u64;
        for c in [None].into_iter().chain(Compression::ALL.map(Some)) {
            let mut seen = Vec::new();
            let mut chunks: Vec<Bytes> = Vec::new();
            compress_stream(
                &mut &input[..],
                c,
                c.map_or(0, |c| c.resolve_level(None)),
                2,
                len,
                &mut |block| seen.extend_from_slice(block),
                &mut chunks,
            )
            .unwrap();
            assert_eq!(seen, input, "{c:?}: inspected bytes");
            let mut back = Vec::new();
            decoder(c, &chunks.concat()[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input, "{c:?}");
            let short = compress_stream(
                &mut &input[..],
                c,
                1,
                2,
                len + 1,
                &mut |_| {},
                &mut Vec::<Bytes>::new(),
            );
            assert_eq!(
                short.unwrap_err().kind(),
                io::ErrorKind::UnexpectedEof,
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_read_error_stops_streamed_compression() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(7);
                self.0 -= n;
                Ok(n)
            }
        }
        for threads in [1, 2] {
            let err = compress_stream(
                &mut Failing(3 * STREAM_BLOCK / 2),
                Some(Compression::Gzip),
                3,
                threads,
                4 * STREAM_BLOCK as u64,
                &mut |_| {},
                &mut Vec::<Bytes>::new(),
            )
            .unwrap_err();
            assert!(err.to_string().contains("disk on fire"), "{err}");
        }
    }

    #[test]
    fn every_codec_handles_empty_input() {
        for c in Compression::ALL {
            let out = compress_buffer(&[], c, c.resolve_level(None), 2).unwrap();
            let mut back = Vec::new();
            decoder(Some(c), &out[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back.is_empty(), "{c:?}");
        }
    }

    #[test]
    fn formats_carry_the_magic_barman_expects() {
        let input = sample();
        let magic = |c| compress_buffer(&input, c, c.resolve_level(None), 2).unwrap();
        assert_eq!(&magic(Compression::Gzip)[..3], &[0x1f, 0x8b, 0x08]);
        assert_eq!(&magic(Compression::Bzip2)[..3], b"BZh");
        assert_eq!(
            &magic(Compression::Xz)[..6],
            &[0xfd, b'7', b'z', b'X', b'Z', 0]
        );
        assert_eq!(&magic(Compression::Zstd)[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(&magic(Compression::Lz4)[..4], &[0x04, 0x22, 0x4d, 0x18]);
        assert_eq!(
            &magic(Compression::Snappy)[..10],
            &[0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y']
        );
    }

    #[test]
    fn suffix_detection_takes_the_first_match_and_strips_it() {
        assert_eq!(
            Compression::from_key("a/000000010000000000000001.gz"),
            (Some(Compression::Gzip), "a/000000010000000000000001")
        );
        assert_eq!(
            Compression::from_key("00000002.history.zst"),
            (Some(Compression::Zstd), "00000002.history")
        );
        assert_eq!(
            Compression::from_key("000000010000000000000001"),
            (None, "000000010000000000000001")
        );
    }

    #[test]
    fn levels_follow_barman_and_clamp() {
        use CompressionLevel::*;
        assert_eq!(Compression::Gzip.resolve_level(None), 6);
        assert_eq!(Compression::Gzip.resolve_level(Some(Number(0))), 1);
        assert_eq!(Compression::Gzip.resolve_level(Some(Number(12))), 9);
        assert!(Compression::Gzip.level_out_of_range(Some(Number(12))));
        assert_eq!(Compression::Bzip2.resolve_level(Some(Medium)), 5);
        assert_eq!(Compression::Xz.resolve_level(Some(High)), 5);
        assert_eq!(Compression::Zstd.resolve_level(Some(Number(-5))), -5);
        assert_eq!(Compression::Zstd.resolve_level(Some(Number(-30))), -22);
        assert_eq!(Compression::Lz4.resolve_level(Some(Low)), 0);
        assert_eq!(Compression::Lz4.resolve_level(Some(Number(20))), 16);
        assert_eq!(Compression::Snappy.resolve_level(Some(High)), 0);
    }
}
