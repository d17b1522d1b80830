//! The integration-test harness: real services, started once per test process.
//!
//! Everything lives under one run root, `/tmp/barnacle-it-<pid>` ([`root`]), that is removed
//! by the next run once this process is gone. Services are started lazily on first use, on
//! free loopback ports, and shared by all tests of the process:
//!
//! - [`s3`]: SeaweedFS (`weed mini`, HTTP and HTTPS on one process) and Ceph RGW (mon + memstore
//!   OSD + radosgw, HTTP and HTTPS), with a reference client (boto3) for assertions;
//! - [`PgCluster`]: a PostgreSQL 15 cluster per test, run as `postgres`;
//! - [`barman`]: Barman 3.19.1 from PyPI in a cached virtualenv;
//! - [`barnacle`] / [`bin_dir`]: the barnacle binary under all its argv\[0\] names, where the
//!   `postgres` user can run it (archive_command, restore_command).
//!
//! Long-lived services are direct children of one dedicated thread ([`service`]) and carry
//! `PR_SET_PDEATHSIG(SIGKILL)`, so they die with the test process, even when it is killed.
//! Anything that cannot start panics with the tail of its log: no test skips itself.

// The harness serves every test module; not every test binary state uses every helper.
#![allow(dead_code)]

mod ceph;
mod pg;
mod s3;
mod s3ref;
mod service;
mod tls;
mod tools;

#[allow(unused_imports)] // the public API, whether or not today's tests name every item
pub use pg::{PgCluster, PgConf};
#[allow(unused_imports)]
pub use s3::{S3Kind, S3Server, SEAWEED_READ_ONLY, s3, unique_bucket};
pub use service::Service;
#[allow(unused_imports)]
pub use tools::{BARNACLE_NAMES, barman, barnacle, bin_dir, venv_dir};

use std::collections::HashSet;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// This process's run root: a fresh, world-readable (0755) directory under /tmp. Roots left by
/// earlier runs whose process is gone are removed the first time this is called.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        remove_stale_roots();
        let dir = PathBuf::from(format!("/tmp/barnacle-it-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create run root {}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        dir
    })
}

fn remove_stale_roots() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("barnacle-it-")) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A new, empty directory under the run root for one test, named after `name` and writable by
/// everyone (0777), so the `postgres` user can write into it too (archive directories, say).
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = root().join(format!("{safe}-{n}"));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create scratch dir {}: {e}", dir.display()));
    set_mode(&dir, 0o777);
    dir
}

/// A loopback TCP port that is free now and not yet handed out by this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if given.insert(port) {
            return port;
        }
    }
    panic!("no free loopback port after 100 tries");
}

/// The uid and gid of the `postgres` user (from /etc/passwd).
pub fn postgres_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        passwd
            .lines()
            .find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() > 3 && f[0] == "postgres").then(|| (f[2].parse().ok(), f[3].parse().ok()))
            })
            .and_then(|(u, g)| Some((u?, g?)))
            .expect("no `postgres` user in /etc/passwd: install postgresql-15 (scripts/test.sh)")
    })
}

/// Makes `cmd` run as the `postgres` user (uid, gid, no supplementary groups).
pub fn as_postgres(cmd: &mut Command) -> &mut Command {
    let (uid, gid) = postgres_ids();
    cmd.uid(uid).gid(gid)
}

/// Gives `path` to the `postgres` user.
pub fn chown_postgres(path: &Path) {
    let (uid, gid) = postgres_ids();
    chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// The last `lines` lines of a log file, for panic messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            format!(
                "--- last {lines} lines of {} ---\n{tail}\n---",
                path.display()
            )
        }
        Err(e) => format!("--- {} unreadable: {e} ---", path.display()),
    }
}

/// Polls `check` every `every` until it gives `Some`, or returns `None` after `timeout`.
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Runs a short command to completion; panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}
