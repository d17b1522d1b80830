//! The invariants checked after the kills, and the small commands they use.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{self, PgCluster};
use crate::support::{Archive, file_name, run};

pub(super) fn sha(path: &Path) -> String {
    barnacle::codec::blake3_hex(&fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
}

/// `barnacle SUB --endpoint-url E ARGS... URL SERVER` (positional arguments follow).
pub(super) fn own(archive: &Archive, sub: &str, args: &[&str]) -> Command {
    let mut cmd = harness::barnacle("barnacle");
    cmd.envs(archive.s3.env())
        .args([sub, "--endpoint-url", &archive.s3.endpoint()])
        .args(args)
        .arg(archive.url())
        .arg(&archive.server);
    cmd
}

/// The backups of the archive: id → status.
pub(super) fn backups(archive: &Archive) -> BTreeMap<String, String> {
    let out = run(&mut own(archive, "list", &["--format", "json"])).ok("list --format json");
    let list: Value = serde_json::from_str(&out.stdout).expect("list JSON");
    list["backups_list"]
        .as_array()
        .expect("backups_list")
        .iter()
        .map(|b| {
            (
                b["backup_id"].as_str().expect("backup_id").to_string(),
                b["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

/// The ids a `delete --dry-run` would delete.
pub(super) fn dry_run_ids(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("Skipping deletion of objects ["))
        .filter_map(|l| {
            let info = l.split(", ").find(|p| p.contains("/backup.info'"))?;
            Some(info.rsplit('/').nth(1)?.to_string())
        })
        .collect()
}

/// The `LABEL:` of a restored `backup_label`: `Barman backup cloud ID`.
pub(super) fn restored_id(data: &Path) -> String {
    let label = fs::read_to_string(data.join("backup_label")).expect("backup_label");
    label
        .lines()
        .find_map(|l| l.strip_prefix("LABEL: Barman backup cloud "))
        .expect("a barnacle backup label")
        .to_string()
}

/// Hidden temp files a killed command may leave in `dir`.
pub(super) fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| file_name(&e.path()))
        .filter(|n| n.contains("barnacle-tmp") || n.ends_with(".tmp"))
        .collect()
}

pub(super) fn find_str(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| map.values().find_map(|x| find_str(x, key))),
        Value::Array(items) => items.iter().find_map(|x| find_str(x, key)),
        _ => None,
    }
}

pub(super) fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// The content digest (BLAKE3) barnacle stored with `key`, from a HEAD of it (which panics
/// for a missing key).
fn stored_sha(archive: &Archive, key: &str) -> Option<String> {
    let meta = archive.s3.head_metadata(&archive.bucket, key);
    meta.get("barnacle-blake3").cloned()
}

/// Every WAL PostgreSQL considers archived is in the store and restores
/// byte-identical; every pushed marker names a stored object. Returns how
/// many files were checked.
pub(super) fn check_archive(archive: &Archive, pg: &PgCluster, keep: &Path, dir: &Path) -> u64 {
    let keys: BTreeSet<String> = archive.keys().into_iter().collect();
    let kept = sorted_files(keep);
    assert!(kept.len() >= 20, "only {} WAL files archived", kept.len());
    let status = pg.data_dir().join("pg_wal/archive_status");
    for done in fs::read_dir(&status).expect("archive_status").flatten() {
        let name = file_name(&done.path());
        if let Some(wal) = name.strip_suffix(".done") {
            assert!(
                keep.join(wal).exists(),
                "{wal} marked done but its archive_command never succeeded"
            );
        }
    }
    let out = dir.join("check-restore");
    fs::create_dir_all(&out).expect("check dir");
    for path in &kept {
        let name = file_name(path);
        let key = archive.wal_key(&name, ".gz");
        // Unlisted, the object itself answers: SeaweedFS's listing once left
        // out an object stored 31 s before and still there after, LastModified
        // unchanged, while another was written in the same directory (by the
        // archiver, then still running; the primary is stopped by now).
        if !keys.contains(&key) {
            assert_eq!(
                stored_sha(archive, &key),
                Some(sha(path)),
                "{name} archived but not in the store (not listed, and HEAD shows other content)"
            );
        }
        if name.ends_with(".backup") {
            // Not restorable (Barman's rule): its stored SHA-256 is compared.
            assert_eq!(stored_sha(archive, &key), Some(sha(path)), "{name} differs");
            continue;
        }
        let dest = out.join(&name);
        run(archive.barnacle("restore", &[]).arg(&name).arg(&dest)).ok("restore");
        assert_eq!(sha(&dest), sha(path), "{name}: restored content differs");
        fs::remove_file(&dest).expect("remove");
    }
    let markers = pg.data_dir().join("pg_wal/barnacle_pushed");
    for entry in fs::read_dir(&markers).into_iter().flatten().flatten() {
        let name = file_name(&entry.path());
        if !name.starts_with('.') {
            let key = archive.wal_key(&name, ".gz");
            if !keys.contains(&key) {
                assert!(
                    stored_sha(archive, &key).is_some(),
                    "marker for {name}, which is not in the store"
                );
            }
        }
    }
    kept.len() as u64
}

/// Every file served from the spool is complete and identical to the
/// archived WAL. Returns how many were checked.
pub(super) fn check_spool(spool: &Path, keep: &Path) -> u64 {
    let mut n = 0;
    for path in sorted_files(spool) {
        let name = file_name(&path);
        if name.starts_with('.') || name.ends_with(".tmp") {
            continue;
        }
        let original = keep.join(&name);
        assert!(original.exists(), "spooled {name} was never archived");
        assert_eq!(sha(&path), sha(&original), "spooled {name} differs");
        n += 1;
    }
    n
}
