//! Files that appear whole or not at all: write a temp file in the target's
//! directory, fsync it, rename it over the target, fsync the directory.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Writes `target` through `tmp` (same directory). On any failure `tmp` is
/// removed and `target` is untouched.
pub(super) fn install<T>(
    target: &Path,
    tmp: &Path,
    write: impl FnOnce(&mut File) -> io::Result<T>,
) -> io::Result<T> {
    let result = (|| {
        let mut file = File::create(tmp)?;
        let value = write(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(tmp, target)?;
        fsync_parent(target)?;
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

/// The hidden temp name used while writing `target`: `.NAME.barnacle-tmp.PID`.
pub(super) fn temp_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.barnacle-tmp.{}", std::process::id()))
}

/// Moves `from` to `to` durably, copying when they are on different filesystems.
pub(super) fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Ok(()) => fsync_parent(to),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            install(to, &temp_path_for(to), |out| {
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
        let r: io::Result<()> = install(&target, &tmp, |f| {
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
        install(&target, &temp_path_for(&target), |f| f.write_all(b"whole")).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert!(!temp_path_for(&target).exists());
    }
}
