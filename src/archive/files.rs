//! Files that appear whole or not at all: write a temp file in the target's
//! directory, rename it over the target; fsync the file and the directory
//! too when the file must survive a system crash ([`Durability`]).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Whether an installed file must survive a system crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// fsync the file, then its directory after the rename: spooled WAL,
    /// which a later run serves as it finds it.
    Synced,
    /// Neither: the file `restore_command` writes for PostgreSQL. After a
    /// system crash PostgreSQL never reuses a restored file, it asks for it
    /// again, and the restored files it keeps it makes durable itself
    /// (`durable_rename` in `KeepFileRestoredFromArchive`). pgBackRest's
    /// `archive-get` writes it the same way. The fsync was a fifth of a WAL
    /// restore's time (8 to 11 ms of 48 for a 16 MiB segment on the
    /// benchmark VM). The rename stays: a killed restore never leaves part of
    /// a file under the requested name.
    Refetched,
}

/// Writes `target` through `tmp` (same directory). On any failure `tmp` is
/// removed and `target` is untouched.
pub(super) fn install<T>(
    target: &Path,
    tmp: &Path,
    durability: Durability,
    write: impl FnOnce(&mut File) -> io::Result<T>,
) -> io::Result<T> {
    let result = (|| {
        let mut file = File::create(tmp)?;
        let value = write(&mut file)?;
        if durability == Durability::Synced {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(tmp, target)?;
        if durability == Durability::Synced {
            fsync_parent(target)?;
        }
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// fsyncs the directory holding `path`, making a rename in it durable.
pub(super) fn fsync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Between a temp file's target name and its writer's PID.
const TEMP_INFIX: &str = ".barnacle-tmp.";

/// The hidden temp name used while writing `target`: `.NAME.barnacle-tmp.PID`.
pub(super) fn temp_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}{TEMP_INFIX}{}", std::process::id()))
}

/// Removes the temp files of `target` (see [`temp_path_for`]) that a
/// process killed mid-write left behind: those whose PID is no longer alive.
/// A SIGKILLed `restore_command` would otherwise leave one in `pg_wal` per
/// kill, never reclaimed. Best effort: failures are ignored.
pub(super) fn remove_stale_temps(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    remove_stale_temps_in(dir, Some(&name.to_string_lossy()));
}

/// Removes the temp files in `dir` (of target `only`, or of any target) whose
/// writer is no longer alive. Best effort: failures are ignored.
pub(super) fn remove_stale_temps_in(dir: &Path, only: Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let temp = file
            .to_str()
            .and_then(|f| f.strip_prefix('.'))
            .and_then(|f| f.rsplit_once(TEMP_INFIX));
        if let Some((name, pid)) = temp
            && only.is_none_or(|only| only == name)
            && let Ok(pid) = pid.parse::<libc::pid_t>()
            && pid > 0
            && !process_alive(pid)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (`kill(pid, 0)` not answering ESRCH).
fn process_alive(pid: libc::pid_t) -> bool {
    if pid == std::process::id() as libc::pid_t {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Moves `from` to `to` (as `durability` says), copying when they are on
/// different filesystems.
pub(super) fn move_file(from: &Path, to: &Path, durability: Durability) -> io::Result<()> {
    match fs::rename(from, to) {
        Ok(()) if durability == Durability::Synced => fsync_parent(to),
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            install(to, &temp_path_for(to), durability, |out| {
                let mut src = File::open(from)?;
                io::copy(&mut src, out).map(drop)
            })?;
            fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "barnacle-files-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn failed_install_leaves_neither_target_nor_temp() {
        let d = dir();
        let target = d.join("t1");
        let tmp = temp_path_for(&target);
        let r: io::Result<()> = install(&target, &tmp, Durability::Synced, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert!(!target.exists() && !tmp.exists());
    }

    #[test]
    fn install_publishes_the_whole_file() {
        let d = dir();
        let target = d.join("t2");
        for durability in [Durability::Synced, Durability::Refetched] {
            install(&target, &temp_path_for(&target), durability, |f| {
                f.write_all(b"whole")
            })
            .unwrap();
            assert_eq!(fs::read(&target).unwrap(), b"whole");
            assert!(!temp_path_for(&target).exists());
        }
    }

    #[test]
    fn temps_of_dead_writers_are_removed_and_live_ones_kept() {
        let d = dir();
        let target = d.join("RECOVERYXLOG");
        // A PID above the kernel's maximum (2^22) never names a live process.
        let dead = d.join(".RECOVERYXLOG.barnacle-tmp.99999999");
        let ours = temp_path_for(&target);
        let parent = d.join(format!(
            ".RECOVERYXLOG.barnacle-tmp.{}",
            std::os::unix::process::parent_id()
        ));
        let other = d.join(".OTHER.barnacle-tmp.99999999");
        for f in [&dead, &ours, &parent, &other] {
            fs::write(f, b"partial").unwrap();
        }
        remove_stale_temps(&target);
        assert!(!dead.exists(), "a dead writer's temp file stays");
        assert!(
            ours.exists() && parent.exists(),
            "a live writer's temp file was removed"
        );
        assert!(other.exists(), "another target's temp file was removed");
    }
}
