//! The objects of one backup that barman-cloud-backup-delete deletes, as
//! `_get_files_for_backup` (cloud_backup_delete.py) and
//! `CloudBackupCatalog.get_backup_files(allow_missing=True)` (cloud.py) find
//! them: from one listing of `base/<ID>/` with delimiter `/` (sub-directory
//! prefixes first, then the keys, each sorted).
//!
//! Each archive has a base, `base/<ID>/data` or `base/<ID>/<OID>` for each
//! tablespace of `backup.info` (in that order; a repeated OID keeps its first
//! place). A listed item belongs to the first base it starts with when the
//! next character is `.` (the main file) or `_` (an extra part). Its
//! extension must be `tar`, `tar.gz`, `tar.bz2`, `tar.snappy` or `tar.lz4`,
//! else "Skipping unknown extension: EXT". An archive with no main file logs
//! "Missing file BASE.* for server S" (not for snapshot backups). The result
//! is sorted by OID, PGDATA as -1: for each archive its main file, then its
//! parts sorted by key.
//!
//! Anything else under `base/<ID>/` stays: `annotations/keep`, `backup_label`,
//! stray files. Surprises kept: with several main files (`data.tar` and
//! `data.tar.gz`) only the last listed is deleted; an OID of 0 sorts with
//! PGDATA and a negative one before it; an extra part with an unknown
//! extension (or a sub-directory `data_x/`) still counts as a part with no
//! key, so with two or more parts Python's sort compares `None` with a key
//! and the command crashes (exit 4) before deleting that backup.

use super::outcome::{Crash, Warning};
use crate::layout::backup_info::BackupInfo;

const EXTENSIONS: [&str; 5] = ["tar", "tar.gz", "tar.bz2", "tar.snappy", "tar.lz4"];

/// One archive (`BackupFileInfo`): its base and what was found for it.
struct Archive {
    oid: Option<i64>,
    base: String,
    main: Option<String>,
    parts: Vec<Option<String>>,
}

/// What deleting one backup's files means.
pub(crate) struct BackupFiles {
    pub files: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// The files of the backup whose directory is `source_dir` (`P/base/<ID>`,
/// no trailing slash); `keys` is every key under `P/base/`, sorted.
pub(crate) fn files_for_backup(
    keys: &[&str],
    source_dir: &str,
    info: &BackupInfo,
    server: &str,
) -> Result<BackupFiles, (Vec<Warning>, Crash)> {
    let mut archives = vec![Archive {
        oid: None,
        base: format!("{source_dir}/data"),
        main: None,
        parts: Vec::new(),
    }];
    for ts in info.tablespaces.iter().flatten() {
        if !archives.iter().any(|a| a.oid == Some(ts.oid)) {
            archives.push(Archive {
                oid: Some(ts.oid),
                base: format!("{source_dir}/{}", ts.oid),
                main: None,
                parts: Vec::new(),
            });
        }
    }
    let mut warnings = Vec::new();
    for item in listing(keys, &format!("{source_dir}/")) {
        for archive in archives.iter_mut() {
            let Some(suffix) = item.strip_prefix(archive.base.as_str()) else {
                continue;
            };
            let (is_part, ext) = match suffix.chars().next() {
                Some('_') => (true, suffix.split_once('.').map_or(suffix, |(_, e)| e)),
                Some('.') => (false, &suffix[1..]),
                _ => continue,
            };
            if is_part {
                archive.parts.push(None);
            }
            if !EXTENSIONS.contains(&ext) {
                warnings.push(Warning::UnknownExtension {
                    ext: ext.to_string(),
                });
                continue;
            }
            let slot = if is_part {
                archive.parts.last_mut()
            } else {
                Some(&mut archive.main)
            };
            if let Some(slot) = slot {
                *slot = Some(item.to_string());
            }
            break;
        }
    }
    if info.snapshots_info.is_none() {
        for archive in archives.iter().filter(|a| a.main.is_none()) {
            warnings.push(Warning::MissingFile {
                base: archive.base.clone(),
                server: server.to_string(),
            });
        }
    }
    // `sorted(..., key=lambda x: x[0] if x[0] else -1)`: stable, 0 is -1 too.
    archives.sort_by_key(|a| a.oid.filter(|oid| *oid != 0).unwrap_or(-1));
    let mut files = Vec::new();
    for archive in archives {
        files.extend(archive.main);
        match py_sort(archive.parts) {
            Ok(parts) => files.extend(parts),
            Err(crash) => return Err((warnings, crash)),
        }
    }
    Ok(BackupFiles { files, warnings })
}

/// `list_bucket(dir, delimiter="/")` over a sorted recursive listing: the
/// sub-directory prefixes, then the keys directly under `dir`.
fn listing<'k>(keys: &[&'k str], dir: &str) -> Vec<&'k str> {
    let start = keys.partition_point(|k| *k < dir);
    let under = keys[start..].iter().take_while(|k| k.starts_with(dir));
    let mut dirs: Vec<&'k str> = Vec::new();
    let mut files = Vec::new();
    for key in under {
        let rest = &key[dir.len()..];
        match rest.find('/') {
            Some(i) => {
                let d = &key[..dir.len() + i + 1];
                if dirs.last() != Some(&d) {
                    dirs.push(d);
                }
            }
            None => files.push(*key),
        }
    }
    dirs.extend(files);
    dirs
}

/// `sorted(parts, key=attrgetter("path"))` where a part without a key is
/// `None`: CPython compares with `<`, and `None` cannot be compared. For
/// fewer than 64 items CPython's timsort is a run count then a binary
/// insertion sort; this replays it to find the comparison that raises.
fn py_sort(parts: Vec<Option<String>>) -> Result<Vec<String>, Crash> {
    if parts.iter().all(Option::is_some) {
        let mut keys: Vec<String> = parts.into_iter().flatten().collect();
        keys.sort();
        return Ok(keys);
    }
    let type_name = |v: &Option<String>| if v.is_some() { "str" } else { "NoneType" };
    let lt = |v: &Option<String>, w: &Option<String>| -> Result<bool, Crash> {
        match (v, w) {
            (Some(a), Some(b)) => Ok(a < b),
            _ => Err(Crash::new(format!(
                "'<' not supported between instances of '{}' and '{}'",
                type_name(v),
                type_name(w)
            ))),
        }
    };
    let mut v = parts;
    if v.len() < 2 {
        return Ok(v.into_iter().flatten().collect());
    }
    // count_run
    let mut n = 2;
    if lt(&v[1], &v[0])? {
        while n < v.len() && lt(&v[n], &v[n - 1])? {
            n += 1;
        }
        v[..n].reverse();
    } else {
        while n < v.len() && !lt(&v[n], &v[n - 1])? {
            n += 1;
        }
    }
    // binarysort from `n`
    for start in n..v.len() {
        let (mut l, mut r) = (0, start);
        while l < r {
            let p = l + (r - l) / 2;
            if lt(&v[start], &v[p])? {
                r = p;
            } else {
                l = p + 1;
            }
        }
        let pivot = v.remove(start);
        v.insert(l, pivot);
    }
    Ok(v.into_iter().flatten().collect())
}
