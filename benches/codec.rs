//! Codec throughput on real 16 MiB WAL segments.
//!
//! For one "easy" segment (written by `pgbench -i`, ~30x with gzip) and one
//! "hard" segment (index builds, TPC-B full-page images, random text, ~2-10x),
//! each the median-compressible segment of its corpus:
//!
//! * `KIND/gzip`: levels 1 to 9 through `codec::compress_buffer` on one
//!   thread and on every core (one gzip member, pigz-style, with zlib-rs; a
//!   member per block with libdeflate at levels 4 to 8), through a plain
//!   `flate2::write::GzEncoder` (zlib-rs's single-core limit) and, at levels 4
//!   to 8, through one `libdeflater` call on the whole segment (libdeflate's);
//! * `KIND/compress`: bzip2 1/5/9, xz 1/3/5, zstd 1/4/9, lz4 0/6/10, snappy;
//! * `KIND/decompress`: every codec at its medium level, through `codec::decoder`;
//! * `digest/ALGORITHM/KIND`: the content digest of each segment, BLAKE3 (what
//!   pushes record) and SHA-256 (what earlier builds recorded), 256 KiB at a
//!   time as a push feeds it.
//!
//! Throughput is the uncompressed segment size (16 MiB), for compression and
//! decompression alike. Compression ratios are printed as each configuration is
//! first run, and as a table at the end.
//!
//! Segments come from `BARNACLE_WAL_CORPUS` (default
//! `/var/tmp/barnacle-wal-corpus`, with `easy/` and `hard/` subdirectories). When
//! it is missing, `cargo bench` generates it with `scripts/make-wal-corpus.sh`
//! (needs PostgreSQL 15; about a minute); in test mode (`cargo test --benches`)
//! the benchmarks are skipped instead. `BARNACLE_BENCH_EASY` and
//! `BARNACLE_BENCH_HARD` may name segment files to use instead of the medians.
//!
//! Run: `cargo bench --bench codec` (4-5 minutes on 2 cores, about one of
//! them for xz 5 on the hard segment); a filter
//! such as `cargo bench --bench codec -- hard/gzip` runs a subset.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use barnacle::codec::{self, Compression, parallel_gzip};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};

/// The levels benchmarked per codec (Barman's low / medium / high for WAL).
const LEVELS: [(Compression, &[i32]); 5] = [
    (Compression::Bzip2, &[1, 5, 9]),
    (Compression::Xz, &[1, 3, 5]),
    (Compression::Zstd, &[1, 4, 9]),
    (Compression::Lz4, &[0, 6, 10]),
    (Compression::Snappy, &[0]),
];
const GZIP_LEVELS: [i32; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// One benchmarked segment.
struct Segment {
    kind: &'static str,
    path: PathBuf,
    data: Vec<u8>,
}

/// (configuration, segment kind) -> (uncompressed bytes, compressed bytes).
type SizeTable = BTreeMap<(String, &'static str), (usize, usize)>;

/// Compressed sizes seen so far, for the summary.
#[derive(Default)]
struct Sizes(RefCell<SizeTable>);

impl Sizes {
    fn record(&self, config: &str, seg: &Segment, compressed: usize) {
        let first = self
            .0
            .borrow_mut()
            .insert((config.to_string(), seg.kind), (seg.data.len(), compressed))
            .is_none();
        if first {
            println!(
                "ratio {:<28} {:<4} {:>9} bytes  {:>6.2}x",
                config,
                seg.kind,
                compressed,
                seg.data.len() as f64 / compressed as f64
            );
        }
    }

    fn print_summary(&self) {
        let sizes = self.0.borrow();
        if sizes.is_empty() {
            return;
        }
        println!("\n{:<28} {:>16} {:>16}", "compressed size", "easy", "hard");
        let configs: Vec<&String> = {
            let mut v: Vec<&String> = sizes.keys().map(|(c, _)| c).collect();
            v.dedup();
            v
        };
        for config in configs {
            let cell = |kind| {
                sizes
                    .get(&(config.clone(), kind))
                    .map(|&(raw, packed)| {
                        format!("{packed:>9} {:>5.1}x", raw as f64 / packed as f64)
                    })
                    .unwrap_or_default()
            };
            println!("{:<28} {:>16} {:>16}", config, cell("easy"), cell("hard"));
        }
    }
}

/// The corpus directory, generated when missing (bench mode only).
fn corpus(bench_mode: bool) -> Option<PathBuf> {
    let dir = std::env::var_os("BARNACLE_WAL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::DEFAULT_CORPUS));
    let present = |d: &Path| {
        !common::segments_in(&d.join("easy")).is_empty()
            && !common::segments_in(&d.join("hard")).is_empty()
    };
    if present(&dir) {
        return Some(dir);
    }
    if !bench_mode {
        eprintln!(
            "codec bench: no WAL corpus at {}; skipped (run `cargo bench --bench codec` to generate it)",
            dir.display()
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-wal-corpus.sh");
    eprintln!(
        "codec bench: generating the WAL corpus: {} {}",
        script.display(),
        dir.display()
    );
    let status = std::process::Command::new(&script)
        .arg(&dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    assert!(
        present(&dir),
        "{} produced no corpus in {}",
        script.display(),
        dir.display()
    );
    Some(dir)
}

fn load(kind: &'static str, corpus: &Path, env: &str) -> Segment {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| common::median_segment(&corpus.join(kind)));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Segment { kind, path, data }
}

fn configure<'a>(c: &'a mut Criterion, name: &str, seg: &Segment) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    // 10 ms to 5 s per iteration: criterion's minimum of 10 flat samples, and
    // a short target (slow codecs run their 10 iterations regardless).
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(seg.data.len() as u64));
    g
}

fn flate2_gzip(input: &[u8], level: i32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(input.len() / 2),
        flate2::Compression::new(level as u32),
    );
    enc.write_all(input).expect("gzip");
    enc.finish().expect("gzip")
}

/// The whole input as one gzip member in one libdeflate call.
fn libdeflate_gzip(input: &[u8], level: i32) -> Vec<u8> {
    let level = libdeflater::CompressionLvl::new(level).expect("libdeflate level");
    let mut c = libdeflater::Compressor::new(level);
    let mut out = vec![0; c.gzip_compress_bound(input.len())];
    let len = c.gzip_compress(input, &mut out).expect("libdeflate");
    out.truncate(len);
    out
}

fn bench_gzip(c: &mut Criterion, seg: &Segment, sizes: &Sizes, cores: usize) {
    let mut g = configure(c, &format!("{}/gzip", seg.kind), seg);
    for level in GZIP_LEVELS {
        let mut threads = vec![1];
        if cores > 1 {
            threads.push(cores);
        }
        for t in threads {
            let id = format!("compress_buffer-{t}t/{level}");
            g.bench_function(&id, |b| {
                b.iter(|| {
                    let out =
                        codec::compress_buffer(black_box(&seg.data), Compression::Gzip, level, t)
                            .expect("gzip");
                    sizes.record(&format!("gzip {level} ({t} thread)"), seg, out.len());
                    out
                })
            });
        }
        g.bench_function(format!("flate2/{level}"), |b| {
            b.iter(|| {
                let out = flate2_gzip(black_box(&seg.data), level);
                sizes.record(&format!("gzip {level} (flate2)"), seg, out.len());
                out
            })
        });
        if parallel_gzip::member_per_block(level as u32) {
            g.bench_function(format!("libdeflate/{level}"), |b| {
                b.iter(|| {
                    let out = libdeflate_gzip(black_box(&seg.data), level);
                    sizes.record(&format!("gzip {level} (libdeflate)"), seg, out.len());
                    out
                })
            });
        }
    }
    g.finish();
}

fn bench_compress(c: &mut Criterion, seg: &Segment, sizes: &Sizes) {
    let mut g = configure(c, &format!("{}/compress", seg.kind), seg);
    for (codec, levels) in LEVELS {
        for &level in levels {
            let config = if codec == Compression::Snappy {
                codec.name().to_string()
            } else {
                format!("{} {level}", codec.name())
            };
            g.bench_function(format!("{}/{level}", codec.name()), |b| {
                b.iter(|| {
                    let out = codec::compress_buffer(black_box(&seg.data), codec, level, 1)
                        .expect("compress");
                    sizes.record(&config, seg, out.len());
                    out
                })
            });
        }
    }
    g.finish();
}

fn bench_decompress(c: &mut Criterion, seg: &Segment) {
    let mut g = configure(c, &format!("{}/decompress", seg.kind), seg);
    for codec in Compression::ALL {
        let level = codec.resolve_level(None);
        // Compressed lazily, so that a filter skipping this benchmark costs nothing.
        let compressed = RefCell::new(None::<Vec<u8>>);
        g.bench_function(format!("{}/{level}", codec.name()), |b| {
            let mut slot = compressed.borrow_mut();
            let input = slot.get_or_insert_with(|| {
                codec::compress_buffer(&seg.data, codec, level, 1).expect("compress")
            });
            b.iter(|| {
                let mut out = Vec::with_capacity(seg.data.len());
                codec::decoder(Some(codec), black_box(&input[..]))
                    .expect("decoder")
                    .read_to_end(&mut out)
                    .expect("decompress");
                assert_eq!(out.len(), seg.data.len());
                out
            })
        });
    }
    g.finish();
}

fn bench_digest(c: &mut Criterion, segs: &[Segment]) {
    let mut g = configure(c, "digest", &segs[0]);
    for algorithm in codec::DigestAlgorithm::ALL {
        for seg in segs {
            g.throughput(Throughput::Bytes(seg.data.len() as u64));
            g.bench_function(format!("{}/{}", algorithm.name(), seg.kind), |b| {
                b.iter(|| {
                    let mut h = algorithm.hasher();
                    for block in black_box(&seg.data).chunks(256 * 1024) {
                        h.update(block);
                    }
                    h.finish()
                })
            });
        }
    }
    g.finish();
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let Some(corpus) = corpus(bench_mode) else {
        return;
    };
    let segs = [
        load("easy", &corpus, "BARNACLE_BENCH_EASY"),
        load("hard", &corpus, "BARNACLE_BENCH_HARD"),
    ];
    for s in &segs {
        eprintln!(
            "codec bench: {} segment {} ({} bytes)",
            s.kind,
            s.path.display(),
            s.data.len()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sizes = Sizes::default();
    // No plots and fewer bootstrap resamples: criterion's analysis would
    // otherwise take longer than the measurements.
    let mut c = Criterion::default()
        .without_plots()
        .nresamples(10_000)
        .configure_from_args();
    for seg in &segs {
        bench_gzip(&mut c, seg, &sizes, cores);
        bench_compress(&mut c, seg, &sizes);
        bench_decompress(&mut c, seg);
    }
    bench_digest(&mut c, &segs);
    c.final_summary();
    sizes.print_summary();
}
