//! Helpers shared by the reliability tests (faults, exhaustion, bad input): synthetic WAL
//! segments, an archive reached through the fault proxy, byte-for-byte checks of what the
//! store holds, and leftovers in directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::backup_support::{connection, newest_backup_id};
use crate::fault_proxy::FaultProxy;
use crate::harness::{self, PgCluster, S3Kind};
use crate::support::{Archive, Ran, run};

/// A synthetic WAL segment `name` of `size` bytes in `dir`: half pseudo-random 64-byte runs,
/// half zeros, so gzip stores about half of it. walpush does not look inside.
pub fn segment(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut data = vec![0u8; size];
    for chunk in data.chunks_mut(64).step_by(2) {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    let path = dir.join(name);
    fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// The WAL segment name of `n` on timeline 1.
pub fn wal_name(n: u64) -> String {
    format!("00000001{:08X}{:08X}", n >> 8, n & 0xff)
}

/// A fresh bucket on SeaweedFS (HTTP) reached through a fault proxy.
pub struct FaultArchive {
    pub archive: Archive,
    pub proxy: FaultProxy,
}

impl FaultArchive {
    pub fn new(name: &str) -> FaultArchive {
        let archive = Archive::new(S3Kind::SeaweedHttp, name);
        let proxy = FaultProxy::in_front_of(&archive.s3.endpoint());
        FaultArchive { archive, proxy }
    }

    /// barnacle under `tool` through the proxy: `TOOL --endpoint-url PROXY ARGS URL SERVER`
    /// (`tool` may be a name and a subcommand: `"barnacle backup"`).
    pub fn via_proxy(&self, tool: &str, args: &[&str]) -> Command {
        let mut words = tool.split_whitespace();
        let mut cmd = harness::barnacle(words.next().expect("a tool"));
        cmd.args(words)
            .envs(self.archive.s3.env())
            .arg("--endpoint-url")
            .arg(self.proxy.endpoint())
            .args(args)
            .arg(self.archive.url())
            .arg(&self.archive.server);
        cmd
    }

    /// barnacle under `tool` straight to the store (no proxy).
    pub fn direct(&self, tool: &str, args: &[&str]) -> Command {
        self.archive.barnacle(tool, args)
    }

    /// The secrets barnacle was given.
    pub fn secrets(&self) -> Vec<String> {
        vec![self.archive.s3.secret_key().to_string()]
    }
}

/// Restores WAL `original`'s name from `archive` straight from the store and asserts it is
/// byte-identical to `original`; returns 1 (one object verified).
pub fn verify_wal(archive: &Archive, original: &Path) -> u64 {
    let name = original
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a WAL file name");
    let dir = harness::scratch("verify");
    let dest = dir.join(&name);
    let r = run(archive.barnacle("restore", &[]).arg(&name).arg(&dest));
    assert_eq!(r.code, 0, "{name} is not restorable: {r:#?}");
    let (got, want) = (
        fs::read(&dest).expect("restored"),
        fs::read(original).expect("original"),
    );
    assert!(got == want, "{name} restored with different content");
    let _ = fs::remove_dir_all(&dir);
    1
}

/// The names in `dir` (hidden ones included), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Asserts `dir` holds no temp or partial file (barnacle's `.NAME.barnacle-tmp.PID`, the
/// spool's `NAME.tmp`).
pub fn assert_no_temp_files(what: &str, dir: &Path) {
    let temps: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.contains("barnacle-tmp") || n.ends_with(".tmp"))
        .collect();
    assert!(
        temps.is_empty(),
        "{what}: temp files left in {}: {temps:?}",
        dir.display()
    );
}

/// The one error line barnacle printed (the whole stderr for a success), without the
/// timestamp and pid prefix of Barman's log format.
pub fn message(ran: &Ran) -> String {
    let line = ran
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    match line.split_once("] ") {
        Some((prefix, rest)) if prefix.contains(" [") => rest.to_string(),
        _ => line.to_string(),
    }
}

/// A small cluster archiving to its own bucket, with one DONE base backup (gzip), made once
/// per test process and shared read-only: tests that damage an archive copy it first
/// ([`clone_archive`]).
pub struct Sample {
    pub archive: Archive,
    pub pg: PgCluster,
    pub id: String,
}

pub fn sample_backup() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let archive = Archive::new(S3Kind::SeaweedHttp, "sample");
        let dir = harness::scratch("sample");
        let archive_command = format!(
            "{} {} {} %p",
            archive.command_line("walpush", ""),
            archive.url(),
            archive.server
        );
        let pg = PgCluster::new(&dir.join("pg"), |c| {
            c.set("archive_mode", "on")
                .set("archive_command", &archive_command)
                .envs(archive.s3.env());
        });
        pg.psql("create table t as select generate_series(1, 100000) as i");
        let conn = connection(&pg);
        let mut args: Vec<&str> = conn.iter().map(String::as_str).collect();
        args.push("--gzip");
        run(&mut archive.barnacle("barman-cloud-backup", &args)).ok("sample backup");
        let id = newest_backup_id(&archive);
        Sample { archive, pg, id }
    })
}

/// A copy of every object of `src` (the server's prefix, metadata included) in a new bucket.
pub fn clone_archive(src: &Archive, name: &str) -> Archive {
    let dst = Archive::new(src.s3.kind(), name);
    for key in src.keys() {
        let body = src.s3.get_object(&src.bucket, &key);
        let meta = src.s3.head_metadata(&src.bucket, &key);
        let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        dst.s3
            .put_object_with_metadata(&dst.bucket, &key, &body, &meta);
    }
    dst
}

/// A small tmpfs mounted on a fresh scratch directory (we run as root), unmounted on drop.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(name: &str, size: &str) -> Tmpfs {
        let dir = harness::scratch(name);
        harness::run_ok(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0777"),
                    "tmpfs",
                ])
                .arg(&dir),
        );
        Tmpfs { dir }
    }

    /// Fills the filesystem until only `left` bytes (about) remain free.
    pub fn fill_leaving(&self, left: u64) {
        // SAFETY: statvfs on a path we own, into a zeroed struct.
        let free = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            let path = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0, "statvfs");
            st.f_bavail * st.f_frsize
        };
        let fill = free.saturating_sub(left) as usize;
        fs::write(self.dir.join("filler"), vec![0x5a; fill]).expect("fill the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Runs `cmd` with at most `n` open file descriptors (`RLIMIT_NOFILE`).
pub fn with_nofile(cmd: &mut Command, n: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
