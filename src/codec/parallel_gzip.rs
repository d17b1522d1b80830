//! One gzip member compressed on several cores, the way pigz does it.
//!
//! The input is cut into blocks. Each block is deflated on its own, primed with
//! the last 32 KiB of the input before it as a preset dictionary (so matches
//! may still reach back across the cut), and ends with a sync flush, which
//! byte-aligns it; the last block ends the deflate stream. Concatenated
//! between one gzip header and one trailer (CRC-32 of the whole input, combined
//! from the blocks' CRCs, and its length), they form a single RFC 1952 member,
//! which Barman's single-member tar readers accept.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::{Compress, FlushCompress, Status};

/// Block size: large enough that priming and flush markers cost nothing,
/// small enough that a 16 MiB WAL segment spreads over the cores.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// Deflate's window: how far back a match may reach.
const WINDOW: usize = 32 * 1024;

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
    if !dictionary.is_empty() {
        let start = dictionary.len().saturating_sub(WINDOW);
        c.set_dictionary(&dictionary[start..])
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        let done = match status {
            Status::StreamEnd => true,
            // A sync flush is complete once it stops filling the output.
            _ => !last && all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

/// Compresses `input` into one gzip member using up to `threads` threads.
pub fn compress(
    input: &[u8],
    level: u32,
    threads: usize,
    block_size: usize,
) -> io::Result<Vec<u8>> {
    let block_size = block_size.max(WINDOW);
    let blocks = input.len().div_ceil(block_size).max(1);
    let work = |i: usize| -> io::Result<(Vec<u8>, crc32fast::Hasher)> {
        let start = i * block_size;
        let end = (start + block_size).min(input.len());
        let data = &input[start..end];
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        let dict = &input[start.saturating_sub(WINDOW)..start];
        Ok((deflate_block(dict, data, i + 1 == blocks, level)?, crc))
    };

    let workers = threads.clamp(1, blocks);
    let mut results: Vec<Option<(Vec<u8>, crc32fast::Hasher)>> =
        (0..blocks).map(|_| None).collect();
    if workers == 1 {
        for (i, slot) in results.iter_mut().enumerate() {
            *slot = Some(work(i)?);
        }
    } else {
        let next = AtomicUsize::new(0);
        let per_worker = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= blocks {
                                return Ok::<_, io::Error>(done);
                            }
                            done.push((i, work(i)?));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("compression worker panicked")))
                })
                .collect::<Vec<_>>()
        });
        for batch in per_worker {
            for (i, r) in batch? {
                results[i] = Some(r);
            }
        }
    }

    let body: usize = results.iter().flatten().map(|(b, _)| b.len()).sum();
    let mut out = Vec::with_capacity(body + 18);
    out.extend_from_slice(&header(level));
    let mut crc = crc32fast::Hasher::new();
    for (block, block_crc) in results.into_iter().flatten() {
        out.extend_from_slice(&block);
        crc.combine(&block_crc);
    }
    out.extend_from_slice(&trailer(crc.finalize(), input.len() as u64));
    Ok(out)
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
        let parallel = compress(&input, 6, 2, 256 * 1024).unwrap().len();
        let serial = compress(&input, 6, 1, input.len()).unwrap().len();
        assert!(
            parallel < serial * 11 / 10,
            "parallel {parallel} vs serial {serial}"
        );
    }
}
