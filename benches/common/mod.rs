//! What the push and restore benches share: the WAL corpus, the stores, a runtime.
//!
//! Stores, each a fresh directory or prefix per run:
//!
//! * `tmpfs`: the local directory store on `/dev/shm` (fsync costs nothing
//!   there; barnacle has no in-memory store, and this is the nearest to one);
//! * `disk`: the local directory store under `BARNACLE_BENCH_DIR` (default
//!   the system temporary directory), fsync and all;
//! * `s3`: an S3 server, when `BARNACLE_BENCH_S3_ENDPOINT` names one
//!   (`BARNACLE_BENCH_S3_BUCKET`, default `bench`, must exist; credentials from
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, extra CA from
//!   `AWS_CA_BUNDLE`); set by hand for a local server (`weed mini`, as
//!   `scripts/compare.sh` starts it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use barnacle::codec::{self, Compression};
use barnacle::storage::{S3Options, Store, StoreConfig, StoreUrl};

pub const DEFAULT_CORPUS: &str = "/var/tmp/barnacle-wal-corpus";

/// One benchmarked segment, read once (the page cache keeps it warm).
pub struct Segment {
    pub kind: &'static str,
    pub path: PathBuf,
    pub size: u64,
}

fn is_segment_name(name: &str) -> bool {
    name.len() == 24
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

pub fn segments_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_str().is_some_and(is_segment_name))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The corpus, or `None` (with a message) when it is missing: these benches
/// do not generate it (`cargo bench --bench codec` or scripts/make-wal-corpus.sh do).
pub fn corpus(bench: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BARNACLE_WAL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CORPUS));
    if segments_in(&dir.join("easy")).is_empty() || segments_in(&dir.join("hard")).is_empty() {
        eprintln!(
            "{bench} bench: no WAL corpus at {}; skipped (scripts/make-wal-corpus.sh {} makes it)",
            dir.display(),
            dir.display()
        );
        return None;
    }
    Some(dir)
}

/// The easy and the hard segment (each the median of its corpus, or the file
/// `BARNACLE_BENCH_EASY` / `BARNACLE_BENCH_HARD` names).
pub fn segments(corpus: &Path) -> [Segment; 2] {
    [
        segment("easy", corpus, "BARNACLE_BENCH_EASY"),
        segment("hard", corpus, "BARNACLE_BENCH_HARD"),
    ]
}

/// Criterion as the push and restore benches configure it.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .without_plots()
        .nresamples(10_000)
        .configure_from_args()
}

/// The segment of `kind` whose gzip-3 ratio is the median of its corpus (the
/// one `benches/codec.rs` picks), or the file `env` names.
pub fn segment(kind: &'static str, corpus: &Path, env: &str) -> Segment {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| median_segment(&corpus.join(kind)));
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    Segment { kind, path, size }
}

/// The segment of `dir` whose gzip ratio is the median of the corpus (ranked
/// at level 3 on every core, which orders segments as level 6 does).
pub fn median_segment(dir: &Path) -> PathBuf {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut ranked: Vec<(f64, PathBuf)> = segments_in(dir)
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let packed =
                codec::compress_buffer(&data, Compression::Gzip, 3, threads).expect("gzip");
            (data.len() as f64 / packed.len() as f64, p)
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, path) = ranked.swap_remove(ranked.len() / 2);
    eprintln!(
        "bench: {} is the median of {} segments in {} (gzip -3 ratio {ratio:.1}x)",
        path.file_name().unwrap_or_default().to_string_lossy(),
        ranked.len() + 1,
        dir.display()
    );
    path
}

/// A store to benchmark against, with its URL's key path and a directory
/// for restored files on the same kind of medium.
pub struct BenchStore {
    pub name: &'static str,
    pub store: Store,
    pub key_path: String,
    pub scratch: PathBuf,
    cleanup: Vec<PathBuf>,
}

impl Drop for BenchStore {
    fn drop(&mut self) {
        for d in &self.cleanup {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn fresh_dir(parent: &Path, tag: &str) -> PathBuf {
    let d = parent.join(format!("barnacle-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    d
}

fn local(name: &'static str, parent: &Path) -> BenchStore {
    let root = fresh_dir(parent, name);
    let store_dir = root.join("store");
    let scratch = root.join("scratch");
    std::fs::create_dir_all(&store_dir).expect("store dir");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    // The local store's delete_many removes directories left empty up the
    // tree, its own root included: a file keeps the root alive.
    std::fs::write(store_dir.join(".keep"), b"").expect("store sentinel");
    BenchStore {
        name,
        store: Store::local(&store_dir),
        key_path: String::new(),
        scratch,
        cleanup: vec![root],
    }
}

/// The stores available on this machine, in the order above.
pub fn stores(rt: &tokio::runtime::Runtime) -> Vec<BenchStore> {
    let mut v = Vec::new();
    if Path::new("/dev/shm").is_dir() {
        v.push(local("tmpfs", Path::new("/dev/shm")));
    }
    let disk = std::env::var_os("BARNACLE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    v.push(local("disk", &disk));
    if let Ok(endpoint) = std::env::var("BARNACLE_BENCH_S3_ENDPOINT") {
        let bucket = std::env::var("BARNACLE_BENCH_S3_BUCKET").unwrap_or_else(|_| "bench".into());
        let url = StoreUrl::parse(&format!("s3://{bucket}/bench-{}", std::process::id()))
            .expect("S3 URL");
        let key_path = url.key_path().to_string();
        let config = StoreConfig {
            url,
            s3: S3Options {
                endpoint_url: Some(endpoint),
                ca_bundle: std::env::var_os("AWS_CA_BUNDLE").map(PathBuf::from),
                ..S3Options::default()
            },
        };
        let store = rt
            .block_on(Store::open(&config))
            .expect("open the S3 store");
        let scratch = fresh_dir(&disk, "s3-scratch");
        v.push(BenchStore {
            name: "s3",
            store,
            key_path,
            scratch: scratch.clone(),
            cleanup: vec![scratch],
        });
    }
    v
}

/// The runtime barnacle's commands run on (one thread; blocking work is
/// spawned off it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
