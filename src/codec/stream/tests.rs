use std::io::{Read, Write};

use super::*;
use crate::codec::decoder;

const ALL: [Option<Compression>; 5] = [
    None,
    Some(Compression::Gzip),
    Some(Compression::Bzip2),
    Some(Compression::Lz4),
    Some(Compression::Snappy),
];

fn sample(len: usize) -> Vec<u8> {
    // Page-like: runs of zeros, repeated tuples, some noise.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match (i / 8192) % 4 {
                0 => 0,
                1 => (i % 61) as u8,
                2 => (x & 0xff) as u8,
                _ => b"pgbench_accounts"[i % 16],
            }
        })
        .collect()
}

fn options(threads: usize, block: usize) -> StreamOptions {
    StreamOptions {
        threads,
        gzip_level: 6,
        gzip_block_size: block,
        gzip_mtime: 1_700_000_000,
    }
}

/// Writes `input` in uneven chunks; returns the output and the last
/// `compressed_len` seen before `finish`.
fn encode(c: Option<Compression>, opts: &StreamOptions, input: &[u8]) -> (Vec<u8>, u64) {
    let mut enc = PartEncoder::new(c, opts, Vec::new()).unwrap();
    let mut rest = input;
    let mut step = 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        enc.write_all(&rest[..n]).unwrap();
        rest = &rest[n..];
        step = (step * 7 + 3) % 300_000 + 1;
    }
    enc.flush().unwrap();
    let seen = enc.compressed_len();
    (enc.finish().unwrap(), seen)
}

fn decode(c: Option<Compression>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    decoder(c, data).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn every_part_codec_round_trips_through_codec_decoder() {
    let input = sample(3 * 1024 * 1024 + 12345);
    for c in ALL {
        let (out, seen) = encode(c, &options(2, 128 * 1024), &input);
        assert_eq!(decode(c, &out), input, "{c:?}");
        assert!(seen <= out.len() as u64, "{c:?}");
        if c.is_some() {
            assert!(out.len() < input.len(), "{c:?} did not compress");
        }
    }
}

#[test]
fn empty_parts_are_valid_streams() {
    for c in ALL {
        let (out, _) = encode(c, &options(2, 64 * 1024), &[]);
        assert!(decode(c, &out).is_empty(), "{c:?}");
    }
}

#[test]
fn gzip_is_one_member_and_identical_for_any_thread_count() {
    let input = sample(5 * 1024 * 1024 + 7);
    for block in [32 * 1024, 128 * 1024, 1 << 20] {
        let (serial, _) = encode(Some(Compression::Gzip), &options(1, block), &input);
        for threads in [2, 3, 4] {
            let (parallel, _) = encode(Some(Compression::Gzip), &options(threads, block), &input);
            assert_eq!(parallel, serial, "threads {threads} block {block}");
        }
        // GzDecoder stops after the first member: equality proves there is one.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&serial[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input, "block {block}");
    }
}

/// Workers reuse one zlib state and recycled input blocks: the member must
/// be byte for byte what a fresh state per block writes, the last block
/// (shorter than the window here) primed like the others.
#[test]
fn reused_deflaters_write_what_fresh_ones_write() {
    use crate::codec::parallel_gzip::{deflate_block, trailer};
    let input = sample(3 * 1024 * 1024 + 5);
    let block = 128 * 1024;
    let mut expected = gzip::tarfile_gzip_header(1_700_000_000).to_vec();
    let mut start = 0;
    while start < input.len() {
        let end = (start + block).min(input.len());
        let dict = &input[start.saturating_sub(32 * 1024)..start];
        expected.extend(deflate_block(dict, &input[start..end], end == input.len(), 6).unwrap());
        start = end;
    }
    expected.extend(trailer(crc32fast::hash(&input), input.len() as u64));
    for threads in [1, 2] {
        let (got, _) = encode(Some(Compression::Gzip), &options(threads, block), &input);
        let first = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            got == expected,
            "threads {threads}: the member differs at {first:?}, lengths {} {}",
            got.len(),
            expected.len()
        );
    }
}

#[test]
fn headers_match_what_barman_writes() {
    let (gz, _) = encode(Some(Compression::Gzip), &options(2, 1 << 20), b"x");
    assert_eq!(&gz[..11], &tarfile_gzip_header(1_700_000_000));
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 0x08, 0x08]);
    assert_eq!(&gz[8..11], &[0x02, 0xff, 0x00]);
    let (lz, _) = encode(Some(Compression::Lz4), &options(1, 1 << 20), b"x");
    // Magic, FLG 0x40 (v1, linked blocks, no checksums, no size), BD 0x40.
    assert_eq!(&lz[..6], &[0x04, 0x22, 0x4d, 0x18, 0x40, 0x40]);
    let (bz, _) = encode(Some(Compression::Bzip2), &options(1, 1 << 20), b"x");
    assert_eq!(&bz[..4], b"BZh9");
    let (sn, _) = encode(Some(Compression::Snappy), &options(1, 1 << 20), b"x");
    assert_eq!(&sn[..10], b"\xff\x06\x00\x00sNaPpY");
}

#[test]
fn xz_and_zstd_are_refused_for_tar_parts() {
    for c in [Compression::Xz, Compression::Zstd] {
        let err = part_encoder(Some(c), 1, Vec::new()).err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    }
}

#[test]
fn compressed_len_grows_while_writing() {
    let input = sample(4 << 20);
    for c in ALL {
        let mut enc = PartEncoder::new(c, &options(2, 64 * 1024), Vec::new()).unwrap();
        enc.write_all(&input).unwrap();
        let mid = enc.compressed_len();
        assert!(mid > 100_000, "{c:?}: {mid}");
        let out = enc.finish().unwrap();
        assert!(mid <= out.len() as u64);
    }
}

#[test]
fn parallel_gzip_memory_stays_bounded_over_200_mib() {
    let block = 256 * 1024;
    let threads = 2;
    let chunk = sample(3 << 20);
    let sink = CountingWriter::new(std::io::sink());
    let mut gz = ParallelGzipWriter::new(sink, 1, threads, block, 0).unwrap();
    let mut fed = 0u64;
    let mut crc = crc32fast::Hasher::new();
    while fed < 200 << 20 {
        gz.write_all(&chunk).unwrap();
        crc.update(&chunk);
        fed += chunk.len() as u64;
    }
    assert_eq!(gz.total_in(), fed);
    assert!(gz.peak_in_flight() <= 2 * threads as u64);
    // In flight: at most 2×threads blocks, each with its 32 KiB dictionary,
    // plus their compressed output (never larger than the input by much).
    let bound = 2 * threads * (block + 32 * 1024) * 2 + 64 * 1024;
    assert!(
        gz.peak_held_bytes() <= bound,
        "held {} > {bound}",
        gz.peak_held_bytes()
    );
    let sink = gz.finish().unwrap();
    assert!(sink.count() > 0 && sink.count() < fed);
}

#[test]
fn gzip_trailer_carries_the_combined_crc() {
    let input = sample(2 << 20);
    let (gz, _) = encode(Some(Compression::Gzip), &options(2, 100_000), &input);
    let t = &gz[gz.len() - 8..];
    assert_eq!(&t[..4], &crc32fast::hash(&input).to_le_bytes());
    assert_eq!(&t[4..], &(input.len() as u32).to_le_bytes());
}
