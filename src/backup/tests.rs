//! Writer and reader tests on synthetic directory trees; archives are read
//! back with the `tar` crate. (`testdata/check_with_python.py` does the same
//! with Python's streaming `tarfile` and Barman's own code, by hand.)

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::*;
use crate::codec::decoder;

pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "barnacle-backup-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// A small PGDATA with one of everything the rules care about.
fn pgdata(root: &Path) -> PathBuf {
    let d = root.join("data");
    put(&d, "PG_VERSION", b"15\n");
    put(&d, "postgresql.auto.conf", b"# auto\n");
    for f in [
        "postmaster.pid",
        "postmaster.opts",
        "standby.signal",
        "recovery.conf",
    ] {
        put(&d, f, b"x");
    }
    put(&d, "base/1/1259", &vec![7u8; 20_000]);
    put(&d, "base/1/pg_internal.init", b"x");
    put(&d, "base/1/t3_16390", b"temp relation, kept as Barman does");
    put(&d, "base/pgsql_tmp/pgsql_tmp1.0", b"x");
    put(&d, "global/1262", b"g");
    put(&d, "global/pg_control", &[1u8; 8192]);
    put(&d, "pg_wal/000000010000000000000001", &[0u8; 1000]);
    put(
        &d,
        "pg_wal/archive_status/000000010000000000000001.done",
        b"",
    );
    put(&d, "pg_log/postgresql.log", b"log");
    put(&d, "pg_stat_tmp/global.stat", b"s");
    put(&d, "pg_replslot/slot1/state", b"s");
    put(&d, "ts_in/PG_15_202209061/1/16400", b"inside");
    fs::create_dir_all(d.join("pg_tblspc")).unwrap();
    fs::create_dir_all(root.join("ts_out/PG_15_202209061")).unwrap();
    symlink(root.join("ts_out"), d.join("pg_tblspc/16385")).unwrap();
    symlink("../ts_in", d.join("pg_tblspc/16384")).unwrap();
    symlink("PG_VERSION", d.join("version_link")).unwrap();
    put(&d, "base/1/hl_a", b"hard");
    fs::hard_link(d.join("base/1/hl_a"), d.join("base/1/hl_b")).unwrap();
    fs::set_permissions(d.join("PG_VERSION"), fs::Permissions::from_mode(0o600)).unwrap();
    d
}

fn spec(root: &Path, d: &Path) -> PgdataTar {
    put(root, "etc/pg_hba.conf", b"local all all trust\n");
    PgdataTar {
        pgdata: d.to_path_buf(),
        tablespaces: vec![
            TablespaceRef {
                oid: 16384,
                location: d.join("ts_in"),
            },
            TablespaceRef {
                oid: 16385,
                location: root.join("ts_out"),
            },
        ],
        extra_root_files: vec![
            ExtraFile {
                path: root.join("etc/pg_hba.conf"),
                optional: false,
            },
            ExtraFile {
                path: root.join("etc/pg_ident.conf"),
                optional: true,
            },
        ],
    }
}

/// Reads one uncompressed tar: (name, type, size, data) per member.
fn members(tar: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>, tar::Header)> {
    assert_eq!(tar.len() % 10240, 0, "not padded to a record");
    let mut ar = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, e.header().entry_type(), data, e.header().clone()));
    }
    out
}

fn names(parts: &[Vec<u8>]) -> Vec<String> {
    parts.iter().flat_map(|p| members(p)).map(|m| m.0).collect()
}

fn plain_parts(spec: &PgdataTar, max: u64, label: &str) -> Vec<Vec<u8>> {
    let sink = EncodedParts::new(Vec::new(), None, StreamOptions::new(1)).unwrap();
    let mut tar = TarArchive::new(sink, max);
    write_pgdata_tar(spec, &mut tar).unwrap();
    append_backup_label(tar, label, 42)
        .unwrap()
        .finish()
        .unwrap()
}

#[test]
fn pgdata_tar_has_barmans_names_exclusions_and_order() {
    let t = TempDir::new("order");
    let d = pgdata(t.path());
    let parts = plain_parts(
        &spec(t.path(), &d),
        u64::MAX,
        "START WAL LOCATION: 0/2000028\n",
    );
    assert_eq!(parts.len(), 1);
    let all = members(&parts[0]);
    let n: Vec<&str> = all.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(n[0], "./");
    for kept in [
        "./PG_VERSION",
        "./postgresql.auto.conf",
        "./version_link",
        "base/",
        "base/1/",
        "base/1/1259",
        "base/1/t3_16390",
        "global/",
        "global/1262",
        "pg_wal/",
        "pg_log/",
        "pg_stat_tmp/",
        "pg_replslot/",
        "pg_tblspc/",
        // Barman excludes ts_in/ itself but still walks below it.
        "ts_in/PG_15_202209061/",
        "ts_in/PG_15_202209061/1/16400",
    ] {
        assert!(n.contains(&kept), "{kept} missing from {n:?}");
    }
    for gone in [
        "./postmaster.pid",
        "./postmaster.opts",
        "./standby.signal",
        "./recovery.conf",
        "base/1/pg_internal.init",
        "base/pgsql_tmp/",
        "base/pgsql_tmp/pgsql_tmp1.0",
        "pg_wal/000000010000000000000001",
        "pg_wal/archive_status/",
        "pg_wal/archive_status/000000010000000000000001.done",
        "pg_log/postgresql.log",
        "pg_stat_tmp/global.stat",
        "pg_replslot/slot1/",
        "pg_replslot/slot1/state",
        "pg_tblspc/16384",
        "pg_tblspc/16385",
        "ts_in/",
    ] {
        assert!(!n.contains(&gone), "{gone} should be excluded");
    }
    // Parents come before children; files of a directory before its subdirectories.
    let pos = |s: &str| n.iter().position(|x| *x == s).unwrap();
    assert!(pos("base/") < pos("base/1/") && pos("base/1/") < pos("base/1/1259"));
    assert!(pos("./PG_VERSION") < pos("base/"));
    // The tail: pg_control, the outside config file, backup_label.
    assert_eq!(
        &n[n.len() - 3..],
        ["global/pg_control", "pg_hba.conf", "backup_label"]
    );
    let control = &all[all.len() - 3];
    assert_eq!(control.2, vec![1u8; 8192]);
    // Hard link within the part, symlink to a file stored as a symlink.
    let kinds: Vec<_> = all.iter().map(|m| (m.0.as_str(), m.1)).collect();
    assert!(kinds.contains(&("./version_link", tar::EntryType::Symlink)));
    assert!(
        kinds.contains(&("base/1/hl_b", tar::EntryType::Link))
            || kinds.contains(&("base/1/hl_a", tar::EntryType::Link))
    );
    // File metadata from the file system.
    let pgv = all.iter().find(|m| m.0 == "./PG_VERSION").unwrap();
    let meta = fs::metadata(d.join("PG_VERSION")).unwrap();
    assert_eq!(pgv.3.mode().unwrap(), 0o600);
    assert_eq!(pgv.3.uid().unwrap(), u64::from(meta.uid()));
    // Python's ustar field holds round(st_mtime) (half to even), not the floor.
    let float = meta.mtime() as f64 + meta.mtime_nsec() as f64 * 1e-9;
    assert_eq!(pgv.3.mtime().unwrap(), float.round_ties_even() as u64);
    assert_eq!(pgv.2, b"15\n");
}

#[test]
fn backup_label_header_is_barmans() {
    let t = TempDir::new("label");
    let d = pgdata(t.path());
    let parts = plain_parts(&spec(t.path(), &d), u64::MAX, "LABEL: x\n");
    let all = members(&parts[0]);
    let (name, kind, data, h) = all.last().unwrap();
    assert_eq!(name, "backup_label");
    assert_eq!(*kind, tar::EntryType::Regular);
    assert_eq!(data, b"LABEL: x\n");
    assert_eq!(h.mode().unwrap(), 0o644);
    assert_eq!(h.uid().unwrap(), 0);
    assert_eq!(h.gid().unwrap(), 42);
    assert_eq!(h.mtime().unwrap(), 0);
    assert_eq!(h.username_bytes(), Some(&b""[..]));
    // No pax header for it: the ustar header directly follows the previous member.
    let raw = &parts[0];
    let at = raw.windows(12).rposition(|w| w == b"backup_label").unwrap();
    assert_eq!(at % 512, 0);
    assert_ne!(raw[at - 512 + 156], b'x');
}

#[test]
fn parts_rotate_on_compressed_size_and_each_is_a_complete_tar() {
    let t = TempDir::new("rotate");
    let d = pgdata(t.path());
    let s = spec(t.path(), &d);
    let whole = names(&plain_parts(&s, u64::MAX, "L\n"));
    // Any byte written makes the part "full": one member per part.
    let parts = plain_parts(&s, 0, "L\n");
    assert_eq!(parts.len(), whole.len());
    assert_eq!(names(&parts), whole);
    for p in &parts {
        assert_eq!(members(p).len(), 1);
    }
    assert_eq!(members(parts.last().unwrap())[0].0, "backup_label");
    // A middling limit: parts exceed it by at most one member.
    let parts = plain_parts(&s, 15_000, "L\n");
    assert!(parts.len() > 1 && parts.len() < whole.len());
    assert_eq!(names(&parts), whole);
}

#[test]
fn compressed_parts_decode_and_stay_single_streams() {
    let t = TempDir::new("compressed");
    let d = pgdata(t.path());
    let s = spec(t.path(), &d);
    let whole = names(&plain_parts(&s, u64::MAX, "L\n"));
    for c in [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Lz4,
        Compression::Snappy,
    ] {
        let sink = EncodedParts::new(Vec::new(), Some(c), StreamOptions::new(2)).unwrap();
        let mut tar = TarArchive::new(sink, 1);
        write_pgdata_tar(&s, &mut tar).unwrap();
        let parts = append_backup_label(tar, "L\n", 0)
            .unwrap()
            .finish()
            .unwrap();
        // bzip2 emits nothing before a 900 kB block is full, so a small
        // tree never looks big enough to rotate (Barman's count lags the same way).
        assert!(parts.len() > 1 || c == Compression::Bzip2, "{c:?}");
        let plain: Vec<Vec<u8>> = parts
            .iter()
            .map(|p| {
                let mut v = Vec::new();
                decoder(Some(c), &p[..])
                    .unwrap()
                    .read_to_end(&mut v)
                    .unwrap();
                v
            })
            .collect();
        assert_eq!(names(&plain), whole, "{c:?}");
    }
}

/// A sink that calls `hook` with every write (to change files mid-walk).
struct HookSink<F: FnMut(&[u8])> {
    out: Vec<u8>,
    hook: F,
}

impl<F: FnMut(&[u8])> Write for HookSink<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.hook)(buf);
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&[u8])> PartSink for HookSink<F> {
    fn compressed_len(&self) -> u64 {
        self.out.len() as u64
    }
    fn next_part(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn vanished_files_are_skipped_and_changed_files_keep_their_stat_size() {
    let t = TempDir::new("live");
    let d = pgdata(t.path());
    put(&d, "victim", b"gone before it is read");
    put(&d, "shrinks", &[9u8; 5000]);
    put(&d, "grows", &[5u8; 700]);
    let (dd, mut done) = (d.clone(), [false; 3]);
    let hook = move |buf: &[u8]| {
        let has = |s: &[u8]| buf.windows(s.len()).any(|w| w == s);
        if !done[0] && buf.len() >= 512 {
            // The root's header: its listing is taken, its files not yet read.
            done[0] = true;
            fs::remove_file(dd.join("victim")).unwrap();
        }
        if !done[1] && has(b"./shrinks") && buf.len() % 512 == 0 {
            done[1] = true;
            fs::OpenOptions::new()
                .write(true)
                .open(dd.join("shrinks"))
                .unwrap()
                .set_len(100)
                .unwrap();
        }
        if !done[2] && has(b"./grows") && buf.len() % 512 == 0 {
            done[2] = true;
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(dd.join("grows"))
                .unwrap();
            f.write_all(&[6u8; 3000]).unwrap();
        }
    };
    let mut tar = TarArchive::new(
        HookSink {
            out: Vec::new(),
            hook,
        },
        u64::MAX,
    );
    let stats = write_pgdata_tar(&spec(t.path(), &d), &mut tar).unwrap();
    assert_eq!(stats.vanished, 1);
    assert_eq!(stats.padded, 1);
    let out = append_backup_label(tar, "L\n", 0).unwrap().out;
    let all = members(&out);
    assert!(!all.iter().any(|m| m.0 == "./victim"));
    let shrunk = &all.iter().find(|m| m.0 == "./shrinks").unwrap().2;
    assert_eq!(shrunk.len(), 5000);
    assert_eq!(&shrunk[..100], &[9u8; 100][..]);
    assert!(shrunk[100..].iter().all(|&b| b == 0));
    assert_eq!(
        all.iter().find(|m| m.0 == "./grows").unwrap().2,
        vec![5u8; 700]
    );
}

#[test]
fn tablespace_tar_holds_the_version_directory_only() {
    let t = TempDir::new("tblspc");
    let ts = t.path().join("ts");
    put(&ts, "PG_15_202209061/5/16385", b"rel");
    put(&ts, "PG_15_202209061/5/pgsql_tmp/pgsql_tmp9.0", b"tmp");
    put(&ts, "PG_14_202107181/5/1", b"old");
    put(&ts, "stray_file", b"x");
    fs::create_dir_all(ts.join("lost+found")).unwrap();
    let sink = EncodedParts::new(Vec::new(), None, StreamOptions::new(1)).unwrap();
    let mut tar = TarArchive::new(sink, u64::MAX);
    let stats = write_tablespace_tar(&ts, "15", &mut tar).unwrap();
    let parts = tar.finish().unwrap().finish().unwrap();
    let mut n = names(&parts);
    n.sort();
    // Barman's quirk: below the excluded PG_14 directory, deeper directories
    // are allowed again.
    assert_eq!(
        n,
        [
            "PG_14_202107181/5/",
            "PG_14_202107181/5/1",
            "PG_15_202209061/",
            "PG_15_202209061/5/",
            "PG_15_202209061/5/16385",
        ]
    );
    assert_eq!(stats.entries(), 5);
}

#[test]
fn a_symlinked_pgdata_is_followed() {
    let t = TempDir::new("link");
    let d = pgdata(t.path());
    let link = t.path().join("data_link");
    symlink(&d, &link).unwrap();
    let parts = plain_parts(&spec(t.path(), &link), u64::MAX, "L\n");
    let n = names(&parts);
    assert_eq!(n[0], "./");
    assert!(n.contains(&"base/1/1259".to_string()));
}

#[test]
fn missing_pg_control_fails_and_missing_optional_files_do_not() {
    let t = TempDir::new("missing");
    let d = pgdata(t.path());
    let s = spec(t.path(), &d);
    let _ = plain_parts(&s, u64::MAX, "L\n"); // pg_ident.conf is optional
    fs::remove_file(d.join("global/pg_control")).unwrap();
    let sink = EncodedParts::new(Vec::new(), None, StreamOptions::new(1)).unwrap();
    let mut tar = TarArchive::new(sink, u64::MAX);
    let err = write_pgdata_tar(&s, &mut tar).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn extraction_restores_what_was_written() {
    let t = TempDir::new("roundtrip");
    let d = pgdata(t.path());
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    let parts = plain_parts(&spec(t.path(), &d), 10_000, "L\n");
    let dest = t.path().join("restore");
    let mut total = ExtractStats::default();
    for p in &parts {
        let s = extract_tar(&p[..], &dest).unwrap();
        total.files += s.files;
        total.hardlinks += s.hardlinks;
    }
    assert!(total.files > 5);
    for rel in [
        "PG_VERSION",
        "base/1/1259",
        "global/pg_control",
        "base/1/hl_a",
    ] {
        let a = fs::metadata(d.join(rel)).unwrap();
        let b = fs::metadata(dest.join(rel)).unwrap();
        assert_eq!(
            fs::read(d.join(rel)).unwrap(),
            fs::read(dest.join(rel)).unwrap()
        );
        assert_eq!(a.mode() & 0o777, b.mode() & 0o777, "{rel}");
        let ns =
            |m: &fs::Metadata| i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        // A float's worth of precision: well under a microsecond.
        assert!((ns(&a) - ns(&b)).abs() < 1000, "{rel}");
    }
    assert_eq!(fs::read(dest.join("backup_label")).unwrap(), b"L\n");
    assert_eq!(
        fs::read(dest.join("pg_hba.conf")).unwrap(),
        b"local all all trust\n"
    );
    assert_eq!(
        fs::read_link(dest.join("version_link")).unwrap(),
        Path::new("PG_VERSION")
    );
    assert!(dest.join("pg_wal").is_dir());
    assert!(!dest.join("pg_tblspc/16384").exists());
    assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o700);
}
