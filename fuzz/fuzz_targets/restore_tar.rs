//! The tar/decompression path of a base-backup restore: `codec::decoder` for
//! the compression a part's name denotes, then `backup::extract_tar` into a
//! fresh directory, exactly as `backup::restore` chains them. Never panics;
//! nothing is ever created outside the destination.
//!
//! The first input byte picks the decoder (none, or one of the six codecs;
//! Barman's base backups use none, gzip, bzip2, snappy and lz4), the rest is
//! the stored part. The decoded stream is cut at 64 MiB: a decompression
//! bomb is a restore writing what the backup says, not a bug, and the cap
//! keeps every run bounded in time and disk.
#![no_main]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use barnacle::backup::extract_tar;
use barnacle::codec::{self, Compression};
use libfuzzer_sys::fuzz_target;

const CODECS: [Option<Compression>; 7] = [
    None,
    Some(Compression::Gzip),
    Some(Compression::Bzip2),
    Some(Compression::Snappy),
    Some(Compression::Lz4),
    Some(Compression::Xz),
    Some(Compression::Zstd),
];

/// A private scratch directory: `$FUZZ_SCRATCH` or the system temp dir.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("barnacle-fuzz-restore-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// Removes `dir` even when the archive left directories without write or
/// search permission.
fn remove_all(dir: &Path) {
    if fs::remove_dir_all(dir).is_ok() {
        return;
    }
    fn open_up(p: &Path) {
        let Ok(meta) = fs::symlink_metadata(p) else {
            return;
        };
        if meta.is_dir() {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
            for e in fs::read_dir(p).into_iter().flatten().flatten() {
                open_up(&e.path());
            }
        }
    }
    open_up(dir);
    fs::remove_dir_all(dir).expect("remove the extraction directory");
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, part)) = data.split_first() else {
        return;
    };
    let compression = CODECS[usize::from(pick) % CODECS.len()];
    let root = scratch();
    let dest = root.join("data");
    if let Ok(decoded) = codec::decoder(compression, part) {
        // Small reads, as a stream's buffers hand the data out in pieces.
        let pieces = std::io::BufReader::with_capacity(4096, decoded.take(64 << 20));
        let _ = extract_tar(pieces, &dest);
    }
    // Nothing but `data` may exist in the scratch directory.
    let outside: Vec<_> = fs::read_dir(root)
        .expect("scratch directory")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "data")
        .collect();
    assert!(
        outside.is_empty(),
        "created outside the destination: {outside:?}"
    );
    remove_all(&dest);
});
