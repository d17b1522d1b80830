//! One gzip member compressed on several cores, the way pigz does it.
//!
//! The input is cut into blocks. Each block is deflated on its own, primed with
//! the last 32 KiB of the input before it as a preset dictionary (so matches
//! may still reach back across the cut), and ends with a sync flush, which
//! byte-aligns it; the last block ends the deflate stream. Concatenated
//! between one gzip header and one trailer (CRC-32 of the whole input, combined
//! from the blocks' CRCs, and its length), they form a single RFC 1952 member,
//! which Barman's single-member tar readers accept.
//!
//! On one thread nothing needs priming: the blocks are one deflate stream,
//! sync-flushed at the same cuts ([`Deflater::next_block`]), so the output is
//! the same kind of member, and compresses as fast as plain flate2 does.
//!
//! ## Backends
//!
//! Levels 1 to 3 and 9 deflate with zlib-rs, as above. Levels 4 to 8
//! ([`member_per_block`]) deflate with libdeflate, the faster there on real
//! WAL (one core, level 6, on the first ten segments of each corpus: 28
//! against 65 ms a segment on compressible WAL, 100 against 177 on poorly
//! compressible WAL; `benches/codec.rs`, `libdeflate/N`, and
//! docs/benchmarks.md, "Level 6 through libdeflate"). libdeflate
//! compresses a whole buffer into a whole stream, with no preset dictionary
//! and no sync flush, so there each block becomes a gzip member of its own:
//! an object is a series of members, as RFC 1952 allows and as `gzip -d`,
//! Python's `gzip` (so `barman-cloud-wal-restore`) and barnacle read them.
//! Each member is 18 bytes of header and trailer, 1.1 KiB a 16 MiB segment;
//! at level 6 the objects are 7% larger than zlib-rs's on compressible WAL
//! and 3.5% smaller on poorly compressible WAL. Only WAL pushes take this
//! path: base backups stay one member (`super::stream::gzip`), which
//! Python's `tarfile` in `r|gz` mode requires.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::{Mutex, mpsc};

#[cfg(test)]
use bytes::Bytes;
use flate2::{Compress, FlushCompress, Status};

use super::{ChunkSink, for_each_block};

/// Block size: large enough that priming and flush markers cost nothing,
/// small enough that a 16 MiB WAL segment spreads over the cores and that
/// the blocks in flight stay a small part of a push's memory.
pub const DEFAULT_BLOCK_SIZE: usize = 256 * 1024;

/// Deflate's window: how far back a match may reach.
pub(crate) const WINDOW: usize = 32 * 1024;

/// The 10-byte gzip header: no name, no time stamp, OS "unknown" (as Python's
/// `gzip.compress(mtime=0)` writes it).
pub fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0xff]
}

/// The 8-byte gzip trailer: CRC-32 and length (mod 2^32), little-endian.
pub fn trailer(crc: u32, len: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(len as u32).to_le_bytes());
    t
}

/// Deflates `data` as one block of a raw deflate stream: primed with
/// `dictionary` (the input just before it; empty for the first block), ending
/// in a sync flush, or, when `last`, ending the stream.
pub fn deflate_block(
    dictionary: &[u8],
    data: &[u8],
    last: bool,
    level: u32,
) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    prime(&mut c, dictionary)?;
    let mut out = Vec::new();
    deflate_into(&mut c, data, last, &mut out)?;
    Ok(out)
}

/// Primes a fresh (or just reset) `c` with the last [`WINDOW`] bytes of
/// `dictionary`, the input before the block; nothing when it is empty.
fn prime(c: &mut Compress, dictionary: &[u8]) -> io::Result<()> {
    if !dictionary.is_empty() {
        let start = dictionary.len().saturating_sub(WINDOW);
        c.set_dictionary(&dictionary[start..])
            .map_err(io::Error::other)?;
    }
    Ok(())
}

/// Deflates `data` with `c` (fresh, primed, or going on from the block
/// before) into `out` (cleared), ending in a sync flush or, when `last`,
/// ending the stream.
fn deflate_into(c: &mut Compress, data: &[u8], last: bool, out: &mut Vec<u8>) -> io::Result<()> {
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    out.clear();
    out.reserve(data.len() + data.len() / 8 + 64);
    let start_in = c.total_in();
    loop {
        let consumed = (c.total_in() - start_in) as usize;
        let status = c
            .compress_vec(&data[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = (c.total_in() - start_in) as usize == data.len();
        let done = match status {
            Status::StreamEnd => true,
            // A sync flush is complete once it stops filling the output.
            _ => !last && all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(());
        }
        out.reserve(64 * 1024);
    }
}

/// Whether WAL pushes at `level` compress each block into a gzip member of
/// its own with libdeflate (see "Backends" in the module docs) rather than
/// into one member with zlib-rs.
pub fn member_per_block(level: u32) -> bool {
    (4..=8).contains(&level)
}

/// A compressed block and the CRC-32 of its input (empty for a block that
/// is a whole member: its own trailer carries its CRC).
type Compressed = (Vec<u8>, crc32fast::Hasher);

/// One thread's compressor of blocks, for the level's backend.
enum BlockDeflater {
    /// zlib-rs: the blocks of one member.
    Zlib(Deflater),
    /// libdeflate: each block a whole member.
    Libdeflate(MemberDeflater),
}

impl BlockDeflater {
    fn new(level: u32) -> BlockDeflater {
        if member_per_block(level) {
            BlockDeflater::Libdeflate(MemberDeflater::new(level))
        } else {
            BlockDeflater::Zlib(Deflater::new(level))
        }
    }

    /// Any block: see [`Deflater::block`].
    fn block(&mut self, dictionary: &[u8], data: &[u8], last: bool) -> io::Result<Compressed> {
        match self {
            BlockDeflater::Zlib(d) => d.block(dictionary, data, last),
            BlockDeflater::Libdeflate(m) => m.member(data),
        }
    }

    /// The block after the last one compressed: see [`Deflater::next_block`].
    fn next_block(&mut self, data: &[u8], last: bool) -> io::Result<Compressed> {
        match self {
            BlockDeflater::Zlib(d) => d.next_block(data, last),
            BlockDeflater::Libdeflate(m) => m.member(data),
        }
    }
}

/// One thread's libdeflate compressor and output buffer, reused block after
/// block.
struct MemberDeflater {
    compressor: libdeflater::Compressor,
    /// Zeroed once at the size the blocks need (fresh pages from the system
    /// for a block of 256 KiB: only what libdeflate writes becomes resident).
    scratch: Vec<u8>,
}

impl MemberDeflater {
    /// At `level`, one of [`member_per_block`]'s, which libdeflate's 0 to 12
    /// all include (its default stands in for any other).
    fn new(level: u32) -> MemberDeflater {
        let level = libdeflater::CompressionLvl::new(level as i32).unwrap_or_default();
        MemberDeflater {
            compressor: libdeflater::Compressor::new(level),
            scratch: Vec::new(),
        }
    }

    /// `data` as one gzip member, copied out at its exact length.
    fn member(&mut self, data: &[u8]) -> io::Result<Compressed> {
        let bound = self.compressor.gzip_compress_bound(data.len());
        if self.scratch.len() < bound {
            self.scratch = vec![0; bound];
        }
        let len = self
            .compressor
            .gzip_compress(data, &mut self.scratch[..bound])
            .map_err(|e| io::Error::other(format!("libdeflate: {e:?}")))?;
        Ok((self.scratch[..len].to_vec(), crc32fast::Hasher::new()))
    }
}

/// One thread's deflater, reused block after block: one zlib state and one
/// output buffer instead of a fresh pair per block.
pub(crate) struct Deflater {
    c: Compress,
    scratch: Vec<u8>,
}

impl Deflater {
    pub(crate) fn new(level: u32) -> Deflater {
        Deflater {
            c: Compress::new(flate2::Compression::new(level), false),
            scratch: Vec::new(),
        }
    }

    /// One block deflated (see [`deflate_block`]) with its CRC-32; the output
    /// copied out at its exact length, since it is kept until the upload.
    pub(crate) fn block(
        &mut self,
        dictionary: &[u8],
        data: &[u8],
        last: bool,
    ) -> io::Result<(Vec<u8>, crc32fast::Hasher)> {
        self.c.reset();
        prime(&mut self.c, dictionary)?;
        self.next_block(data, last)
    }

    /// The block that follows the last one this deflater compressed, with
    /// its CRC-32 and the output copied out at its exact length: no reset and
    /// no priming, the stream goes on, its window already holds the input
    /// before `data`. [`Self::block`] is this after a reset and priming; going
    /// on saves what priming costs: inserting the 32 KiB dictionary into the hash
    /// chains, which at level 2 on compressible WAL took longer than a
    /// quarter of deflating the 256 KiB block itself.
    pub(crate) fn next_block(
        &mut self,
        data: &[u8],
        last: bool,
    ) -> io::Result<(Vec<u8>, crc32fast::Hasher)> {
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        deflate_into(&mut self.c, data, last, &mut self.scratch)?;
        Ok((self.scratch.clone(), crc))
    }
}

/// Compresses what `input` yields into one gzip member, `block_size` at a
/// time on up to `threads` threads, handing every block read to `inspect`
/// first (the caller hashes it). The member goes to `out` as chunks (header,
/// one per block, trailer) as soon as each is in order; returns the number of
/// bytes read. Memory: a block per thread and two more in flight, plus what
/// `out` keeps.
pub fn compress_reader(
    input: &mut dyn Read,
    level: u32,
    threads: usize,
    block_size: usize,
    inspect: &mut dyn FnMut(&[u8]),
    out: &mut dyn ChunkSink,
) -> io::Result<u64> {
    let block_size = block_size.max(WINDOW);
    let mut member = Member::new(level, out)?;
    let total = if threads <= 1 {
        // One stream from the first block to the last (or one member per
        // block): nothing to prime.
        let mut deflater = BlockDeflater::new(level);
        let spare = RefCell::new(Vec::new());
        for_each_block(input, block_size, inspect, &spare, |data, last| {
            member.push(deflater.next_block(&data, last)?)?;
            spare.borrow_mut().push(data);
            Ok(())
        })?
    } else {
        compress_on_workers(input, level, threads, block_size, inspect, &mut member)?
    };
    member.finish(total)?;
    Ok(total)
}

/// The gzip output being written from compressed blocks, in order: one
/// member around them, or (levels of [`member_per_block`]) the blocks
/// themselves, each a member.
struct Member<'a> {
    out: &'a mut dyn ChunkSink,
    /// The CRC-32 of the input so far, when the blocks make one member.
    crc: Option<crc32fast::Hasher>,
}

impl<'a> Member<'a> {
    fn new(level: u32, out: &'a mut dyn ChunkSink) -> io::Result<Member<'a>> {
        if member_per_block(level) {
            return Ok(Member { out, crc: None });
        }
        out.put(header(level).to_vec())?;
        Ok(Member {
            out,
            crc: Some(crc32fast::Hasher::new()),
        })
    }

    fn push(&mut self, (block, crc): Compressed) -> io::Result<()> {
        if let Some(whole) = &mut self.crc {
            whole.combine(&crc);
        }
        self.out.put(block)
    }

    fn finish(self, len: u64) -> io::Result<()> {
        match self.crc {
            Some(crc) => self.out.put(trailer(crc.finalize(), len).to_vec()),
            None => Ok(()),
        }
    }
}

/// The last [`WINDOW`] bytes of `data`: the next block's dictionary.
fn window_of(data: &[u8]) -> Vec<u8> {
    data[data.len().saturating_sub(WINDOW)..].to_vec()
}

/// A block to compress: its index, dictionary, data, and whether it is last.
type Job = (usize, Vec<u8>, Vec<u8>, bool);
/// A compressed block (or why not), and the block's buffer to read into again.
type Done = (usize, io::Result<Compressed>, Vec<u8>);

/// [`compress_reader`] with `threads` workers: this thread reads, inspects
/// and hands out blocks (one waiting: reading and hashing a block takes a
/// fraction of the time deflating it does), and puts the compressed
/// blocks back in order as they come.
fn compress_on_workers(
    input: &mut dyn Read,
    level: u32,
    threads: usize,
    block_size: usize,
    inspect: &mut dyn FnMut(&[u8]),
    member: &mut Member,
) -> io::Result<u64> {
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(1);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::scope(|s| {
        let mut workers = 0;
        for _ in 0..threads {
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut deflater = BlockDeflater::new(level);
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((i, dictionary, data, last)) = job else {
                        return;
                    };
                    let done = deflater.block(&dictionary, &data, last);
                    if done_tx.send((i, done, data)).is_err() {
                        return;
                    }
                }
            });
            // Out of threads (a pid or memory limit): the workers started
            // do the job; with none, the push fails and is retried.
            match spawned {
                Ok(_) => workers += 1,
                Err(e) if workers == 0 => {
                    return Err(io::Error::other(format!(
                        "cannot start a compression thread: {e}"
                    )));
                }
                Err(_) => break,
            }
        }
        drop(done_tx);
        let mut waiting: BTreeMap<usize, Compressed> = BTreeMap::new();
        let mut next_out = 0;
        let spare = RefCell::new(Vec::new());
        let mut put_back = |(i, done, data): Done, member: &mut Member| -> io::Result<()> {
            spare.borrow_mut().push(data);
            waiting.insert(i, done?);
            while let Some(block) = waiting.remove(&next_out) {
                member.push(block)?;
                next_out += 1;
            }
            Ok(())
        };
        let primed = !member_per_block(level);
        let mut dictionary = Vec::new();
        let mut sent = 0;
        let read = for_each_block(input, block_size, inspect, &spare, |data, last| {
            let next_dictionary = if primed { window_of(&data) } else { Vec::new() };
            let job = (
                sent,
                std::mem::replace(&mut dictionary, next_dictionary),
                data,
                last,
            );
            job_tx
                .send(job)
                .map_err(|_| io::Error::other("compression worker panicked"))?;
            sent += 1;
            while let Ok(done) = done_rx.try_recv() {
                put_back(done, member)?;
            }
            Ok(())
        });
        // No more jobs: the workers finish theirs and stop.
        drop(job_tx);
        let total = read?;
        for done in done_rx.iter() {
            put_back(done, member)?;
        }
        if next_out != sent {
            return Err(io::Error::other("compression worker panicked"));
        }
        Ok(total)
    })
}

/// Compresses `input` into one gzip member using up to `threads` threads.
#[cfg(test)]
pub fn compress(
    input: &[u8],
    level: u32,
    threads: usize,
    block_size: usize,
) -> io::Result<Vec<u8>> {
    let mut chunks: Vec<Bytes> = Vec::new();
    compress_reader(
        &mut &input[..],
        level,
        threads,
        block_size,
        &mut |_| {},
        &mut chunks,
    )?;
    Ok(chunks.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip_single_member(data: &[u8]) -> Vec<u8> {
        // GzDecoder (not Multi) stops after the first member: a second member
        // would be left unread, so equality below proves there is only one.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    (x & 0xff) as u8
                } else {
                    (i % 251) as u8
                }
            })
            .collect()
    }

    #[test]
    fn output_is_one_member_equal_to_the_input_for_any_split() {
        let input = pseudo_random(3 * 1024 * 1024 + 777);
        for (threads, block) in [(1, 1 << 20), (2, 1 << 20), (4, 64 * 1024), (3, 5 << 20)] {
            let gz = compress(&input, 3, threads, block).unwrap();
            assert_eq!(
                gunzip_single_member(&gz),
                input,
                "threads {threads} block {block}"
            );
        }
    }

    #[test]
    fn empty_and_tiny_inputs_are_valid_members() {
        for input in [&b""[..], b"x", &[0u8; 100]] {
            let gz = compress(input, 6, 2, DEFAULT_BLOCK_SIZE).unwrap();
            assert_eq!(gunzip_single_member(&gz), input);
        }
    }

    #[test]
    fn priming_keeps_the_ratio_of_a_serial_stream() {
        // A repeating 16 KiB pattern (inside deflate's window): without the
        // dictionary every block would pay for the pattern again.
        let unit = pseudo_random(16 * 1024);
        let input: Vec<u8> = unit.iter().cycle().take(4 << 20).copied().collect();
        let parallel = compress(&input, 3, 2, 256 * 1024).unwrap().len();
        let serial = compress(&input, 3, 1, input.len()).unwrap().len();
        assert!(
            parallel < serial * 11 / 10,
            "parallel {parallel} vs serial {serial}"
        );
    }

    /// Splits a series of gzip members into their decompressed contents,
    /// checking each one's trailer (flate2's single-member decoder).
    fn members(mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(data);
            let mut member = Vec::new();
            decoder.read_to_end(&mut member).unwrap();
            data = decoder.into_inner();
            out.push(member);
        }
        out
    }

    #[test]
    fn levels_4_to_8_write_a_member_per_block_on_any_number_of_threads() {
        let input = pseudo_random(3 * 1024 * 1024 + 777);
        let block = 256 * 1024;
        for level in 1..=9 {
            let one = compress(&input, level, 1, block).unwrap();
            let two = compress(&input, level, 2, block).unwrap();
            let parts = members(&one);
            if member_per_block(level) {
                assert_eq!(parts.len(), input.len().div_ceil(block), "level {level}");
                assert!(parts.iter().all(|p| p.len() <= block), "level {level}");
                // Blocks are independent: the output does not depend on the threads.
                assert!(one == two, "level {level}: 1 and 2 threads differ");
            } else {
                assert_eq!(parts.len(), 1, "level {level}");
                assert_eq!(members(&two).len(), 1, "level {level}");
            }
            assert!(parts.concat() == input, "level {level}: content differs");
            assert!(
                members(&two).concat() == input,
                "level {level}: content differs"
            );
        }
    }

    #[test]
    fn a_member_per_block_reads_back_through_barnacles_reader() {
        let input = pseudo_random(1024 * 1024 + 5);
        for (level, threads) in [(4, 1), (6, 2), (8, 3)] {
            let gz = compress(&input, level, threads, 64 * 1024).unwrap();
            let mut back = Vec::new();
            crate::codec::decoder(Some(crate::codec::Compression::Gzip), &gz[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == input, "level {level}");
        }
        // An empty input is one empty member.
        let gz = compress(b"", 6, 2, DEFAULT_BLOCK_SIZE).unwrap();
        assert_eq!(members(&gz), vec![Vec::<u8>::new()]);
    }
}
