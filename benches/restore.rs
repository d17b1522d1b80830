//! The WAL restore pipeline in process: listing → download → decompress ∥
//! SHA-256 check → temp file, fsync, rename.
//!
//! `archive::restore_wal` (no prefetch) of the median easy and hard segment of
//! the corpus, pushed once at gzip 2 (walpush's default) and at gzip 6, from
//! each store of `common::stores` (tmpfs, disk, and an S3 server when
//! `BARNACLE_BENCH_S3_ENDPOINT` is set) into a directory on the same kind of
//! medium (the system temporary directory for S3). The restored file is removed
//! after each restore, untimed. As for `benches/push.rs`, the client is opened
//! once; a `restore` process also pays its start, the client and TLS.
//!
//! Throughput is the restored segment (16 MiB) per restore.
//!
//! Run: `cargo bench --bench restore` (about 2 minutes without S3).

mod common;

use std::time::{Duration, Instant};

use barnacle::archive::{PushOptions, RestoreOptions, RestoreOutcome, push_wal, restore_wal};
use barnacle::codec::Compression;
use barnacle::layout::ServerPrefix;
use barnacle::pg::WalName;
use criterion::{SamplingMode, Throughput};

fn main() {
    let Some(corpus) = common::corpus("restore") else {
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
                "restore bench: {} {} segment {}",
                st.name,
                seg.kind,
                seg.path.display()
            );
            let name = seg
                .path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let wal = WalName::parse(&name).expect("segment name");
            let mut g = c.benchmark_group(format!("restore/{}/{}", st.name, seg.kind));
            g.sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_secs(3))
                .throughput(Throughput::Bytes(seg.size));
            for level in [2, 6] {
                let prefix =
                    ServerPrefix::new(&st.key_path, &format!("restore-{}-l{level}", seg.kind));
                let push = PushOptions {
                    compression: Some(Compression::Gzip),
                    level,
                    tags: Vec::new(),
                    history_tags: Vec::new(),
                    threads: cores,
                    staging: None,
                };
                rt.block_on(push_wal(&st.store, &prefix, &seg.path, &push))
                    .expect("push the segment to restore");
                let opts = RestoreOptions {
                    no_partial: false,
                    parallel: 0,
                    spool_dir: st.scratch.join("spool"),
                };
                let dest = st.scratch.join(&name);
                g.bench_function(format!("gzip{level}"), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let started = Instant::now();
                            let outcome = rt
                                .block_on(restore_wal(&st.store, &prefix, &wal, &dest, &opts))
                                .expect("restore");
                            total += started.elapsed();
                            assert!(matches!(outcome, RestoreOutcome::Restored { .. }));
                            std::fs::remove_file(&dest).expect("remove the restored file");
                        }
                        total
                    })
                });
            }
            g.finish();
        }
    }
    c.final_summary();
}
