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

/// If the spool holds `name`, moves it to `dest` and returns true.
pub(super) fn take(spool_dir: &Path, name: &str, dest: &Path) -> Result<bool> {
    let spooled = spool_dir.join(name);
    if !spooled.is_file() {
        return Ok(false);
    }
    files::move_file(&spooled, dest).map_err(spool_err(&spooled))?;
    Ok(true)
}

/// Creates the spool directory if needed.
pub(super) fn ensure_dir(spool_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(spool_dir).map_err(spool_err(spool_dir))
}

/// Where `name` goes in the spool, and the temp name it is written under.
pub(super) fn paths(spool_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (spool_dir.join(name), spool_dir.join(format!("{name}.tmp")))
}
