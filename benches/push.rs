//! The WAL push pipeline in process: read → SHA-256 ∥ gzip → listing → conditional put.
//!
//! `archive::push_wal` on the median easy and hard segment of the corpus (see
//! `benches/codec.rs`), into each store of `common::stores` (tmpfs, disk, and
//! an S3 server when `BARNACLE_BENCH_S3_ENDPOINT` is set), at gzip levels 2
//! (walpush's default) and 6, compressing on 1 thread and on every core. Each
//! push goes to a fresh server prefix (so it uploads), and the object is deleted
//! after it, untimed. The client is opened once, as in the sidecar: a `walpush`
//! process also pays its start, the client's set-up and TLS (see
//! docs/benchmarks.md for the per-process figures).
//!
//! Throughput is the uncompressed segment (16 MiB) per push.
//!
//! Run: `cargo bench --bench push` (about 3 minutes without S3); a filter such as
//! `cargo bench --bench push -- tmpfs/hard` runs a subset.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use barnacle::archive::{PushOptions, PushOutcome, push_wal};
use barnacle::codec::Compression;
use barnacle::layout::ServerPrefix;
use criterion::{SamplingMode, Throughput};

static PREFIX: AtomicU64 = AtomicU64::new(0);

fn main() {
    let Some(corpus) = common::corpus("push") else {
        return;
    };
    let segs = common::segments(&corpus);
    let rt = common::runtime();
    let stores = common::stores(&rt);
    let cores = common::cores();
    let mut c = common::criterion();
    for st in &stores {
        for seg in &segs {
            eprintln!(
                "push bench: {} {} segment {}",
                st.name,
                seg.kind,
                seg.path.display()
            );
            let mut g = c.benchmark_group(format!("push/{}/{}", st.name, seg.kind));
            g.sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_secs(3))
                .throughput(Throughput::Bytes(seg.size));
            for level in [2, 6] {
                let mut threads = vec![1];
                if cores > 1 {
                    threads.push(cores);
                }
                for t in threads {
                    let opts = PushOptions {
                        compression: Some(Compression::Gzip),
                        level,
                        tags: Vec::new(),
                        history_tags: Vec::new(),
                        threads: t,
                        staging: None,
                    };
                    g.bench_function(format!("gzip{level}-{t}t"), |b| {
                        b.iter_custom(|iters| {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let n = PREFIX.fetch_add(1, Ordering::Relaxed);
                                let prefix = ServerPrefix::new(&st.key_path, &format!("p{n}"));
                                let started = Instant::now();
                                let outcome = rt
                                    .block_on(push_wal(&st.store, &prefix, &seg.path, &opts))
                                    .expect("push");
                                total += started.elapsed();
                                let PushOutcome::Uploaded { key, .. } = outcome else {
                                    panic!("{} was already archived", prefix.as_str());
                                };
                                rt.block_on(st.store.delete_many(&[key], 1))
                                    .expect("delete");
                            }
                            total
                        })
                    });
                }
            }
            g.finish();
        }
    }
    c.final_summary();
}
