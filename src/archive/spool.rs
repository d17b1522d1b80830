//! The restore spool: segments fetched ahead of PostgreSQL's requests.
//!
//! A spooled file is named exactly like the WAL it holds (no compression
//! suffix, `.partial` removed), and only ever appears complete: it is written
//! as `NAME.tmp` and renamed. Any problem with the spool directory is exit
//! code 2, as in Barman.

use std::path::{Path, PathBuf};

use super::files;
use crate::error::{Error, Result};

fn spool_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Spool {
        path: path.to_path_buf(),
        source,
    }
}

/// The file naming the archive a spool was filled from.
const SOURCE_FILE: &str = ".barnacle-source";
/// One byte is appended per request served from the spool (a counter the
/// sidecar exports as `barnacle_restore_spool_hits_total`).
pub const HITS_FILE: &str = ".barnacle-spool-hits";

/// Makes sure the spool holds only files of `source` (`URL SERVER`): a spool
/// left by a restore from another archive is emptied first, so its files are
/// never served. A spool without a source file (Barman's) is left alone.
pub(super) fn claim(spool_dir: &Path, source: &str) -> Result<()> {
    let marker = spool_dir.join(SOURCE_FILE);
    match std::fs::read_to_string(&marker) {
        Ok(text) if text == source => return Ok(()),
        Ok(_) => {
            tracing::warn!(spool = %spool_dir.display(), "the spool holds WAL of another archive: emptying it");
            for entry in std::fs::read_dir(spool_dir)
                .map_err(spool_err(spool_dir))?
                .flatten()
            {
                let name = entry.file_name();
                if name != SOURCE_FILE && name != HITS_FILE {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(spool_dir).map_err(spool_err(spool_dir))?;
    std::fs::write(&marker, source).map_err(spool_err(&marker))
}

/// True when the spool was filled from another archive than `source`.
fn foreign(spool_dir: &Path, source: &str) -> bool {
    std::fs::read_to_string(spool_dir.join(SOURCE_FILE)).is_ok_and(|text| text != source)
}

/// If the spool holds `name` (from `source`), moves it to `dest` and returns true.
pub(super) fn take(spool_dir: &Path, name: &str, dest: &Path, source: &str) -> Result<bool> {
    let spooled = spool_dir.join(name);
    if !spooled.is_file() || foreign(spool_dir, source) {
        return Ok(false);
    }
    files::move_file(&spooled, dest, files::Durability::Refetched).map_err(spool_err(&spooled))?;
    count_hit(spool_dir);
    Ok(true)
}

fn count_hit(spool_dir: &Path) {
    use std::io::Write;
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spool_dir.join(HITS_FILE))
        .and_then(|mut f| f.write_all(b"."));
}

/// Creates the spool directory if needed.
pub(super) fn ensure_dir(spool_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(spool_dir).map_err(spool_err(spool_dir))
}

/// Where `name` goes in the spool, and the temp name it is written under.
pub(super) fn paths(spool_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (spool_dir.join(name), spool_dir.join(format!("{name}.tmp")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_another_archive_are_never_served() {
        let dir = std::env::temp_dir().join(format!("barnacle-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = dir.join("spool");
        claim(&spool, "s3://a pg").unwrap();
        std::fs::write(spool.join("000000010000000000000005"), b"from a").unwrap();
        let dest = dir.join("dest");
        assert!(!take(&spool, "000000010000000000000005", &dest, "s3://b pg").unwrap());
        assert!(!dest.exists());
        // Claiming the spool for archive b empties it.
        claim(&spool, "s3://b pg").unwrap();
        assert!(!spool.join("000000010000000000000005").exists());
        std::fs::write(spool.join("000000010000000000000006"), b"from b").unwrap();
        assert!(take(&spool, "000000010000000000000006", &dest, "s3://b pg").unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"from b");
        assert_eq!(std::fs::metadata(spool.join(HITS_FILE)).unwrap().len(), 1);
    }
}
