//! Resource exhaustion: a full disk where a restore writes (the destination, the spool), a
//! store that refuses writes (403), too few file descriptors. Each must end in a clear error
//! and the right exit code, with nothing corrupt left behind: no partial WAL where
//! PostgreSQL reads, no half-written spool file, no restored data directory PostgreSQL would
//! start, no object in the store, no multipart upload left open.

use std::fs;

use crate::backup_support::connection;
use crate::harness::{self, SEAWEED_READ_ONLY};
use crate::reliability_summary::{Record, assert_no_secret, record};
use crate::reliability_support::{
    Tmpfs, assert_no_temp_files, clone_archive, entries, message, sample_backup, segment,
    verify_wal, wal_name, with_nofile,
};
use crate::support::{Archive, Ran, run};

const AREA: &str = "resource exhaustion";

#[allow(clippy::too_many_arguments)]
fn note(
    kind: &str,
    case: &str,
    ran: &Ran,
    barman: Option<&Ran>,
    result: String,
    verified: u64,
    scanned: u64,
) {
    record(Record {
        injected: 1,
        exit: Some(ran.code),
        barman_exit: barman.map(|b| b.code),
        result,
        verified,
        scanned,
        ..Record::new(AREA, kind, case)
    });
}

fn secrets(archive: &Archive) -> Vec<String> {
    vec![
        archive.s3.secret_key().to_string(),
        SEAWEED_READ_ONLY.1.to_string(),
    ]
}

#[test]
fn a_full_disk_at_the_wal_destination_or_the_spool() {
    let archive = Archive::new(harness::S3Kind::SeaweedHttp, "full-disk");
    let secrets = secrets(&archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let src = harness::scratch("full-disk-src");
    let big = segment(&src, &wal_name(0x20), 16 << 20, 0x20);
    let small = segment(&src, &wal_name(0x21), 2 << 20, 0x21);
    let quads: Vec<_> = (0..5)
        .map(|i| segment(&src, &wal_name(0x30 + i), 4 << 20, 0x30 + i))
        .collect();
    for s in [&big, &small].into_iter().chain(&quads) {
        run(archive.barnacle("walpush", &[]).arg(s)).ok("walpush");
    }

    // The destination (pg_wal) on an 8 MiB filesystem; the segment needs 16 MiB.
    let disk = Tmpfs::mount("full-pg-wal", "8m");
    let dest = disk.dir.join("RECOVERYXLOG");
    let r = run(archive
        .barnacle("restore", &[])
        .arg(wal_name(0x20))
        .arg(&dest));
    assert_eq!(r.code, 4, "restore onto a full disk: {r:#?}");
    r.one_line_error("no space left on device");
    assert!(
        !dest.exists(),
        "a partial WAL was left where PostgreSQL reads"
    );
    assert_no_temp_files("full destination", &disk.dir);
    assert!(entries(&disk.dir).is_empty(), "{:?}", entries(&disk.dir));
    let scanned = assert_no_secret("full disk", &r, &secrets);
    let mut barman = archive.barman("barman-cloud-wal-restore", &[]);
    let b = run(barman.arg(wal_name(0x20)).arg(disk.dir.join("barman")));
    assert_eq!(b.code, r.code, "Barman's exit code differs: {b:#?}");
    let _ = fs::remove_file(disk.dir.join("barman"));
    // The space was given back: a segment that fits is restored.
    run(archive
        .barnacle("restore", &[])
        .arg(wal_name(0x21))
        .arg(&dest))
    .ok("restore once there is room");
    assert!(fs::read(&dest).unwrap() == fs::read(&small).unwrap());
    note(
        "full disk",
        "wal-restore of a 16 MiB segment into an 8 MiB filesystem",
        &r,
        Some(&b),
        format!(
            "{}; no file and no temp file left; a segment that fits is then restored",
            message(&r)
        ),
        1,
        scanned,
    );
    drop(disk);

    // The spool on a filesystem with room for one 4 MiB segment: -p 4 prefetches three.
    let spool = Tmpfs::mount("full-spool", "8m");
    spool.fill_leaving(5 << 20);
    let spool_arg = spool.dir.join("spool").display().to_string();
    let out = harness::scratch("full-spool-dest");
    let first = 0x30;
    let r = run(archive
        .barnacle("restore", &["-p", "4", "--spool-dir", &spool_arg])
        .arg(wal_name(first))
        .arg(out.join("RECOVERYXLOG")));
    assert_eq!(r.code, 0, "restore -p 4 with a full spool: {r:#?}");
    assert!(fs::read(out.join("RECOVERYXLOG")).unwrap() == fs::read(&quads[0]).unwrap());
    assert!(
        r.stderr.contains("No space left on device"),
        "the failed prefetches are reported: {r:#?}"
    );
    let spool_dir = spool.dir.join("spool");
    assert_no_temp_files("full spool", &spool_dir);
    let spooled: Vec<String> = entries(&spool_dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(spooled.len() < 3, "all prefetches fitted: {spooled:?}");
    let mut verified = 1;
    for (i, q) in quads.iter().enumerate().skip(1) {
        let name = wal_name(first + i as u64);
        if spooled.contains(&name) {
            assert!(fs::read(spool_dir.join(&name)).unwrap() == fs::read(q).unwrap());
        }
        let dest = out.join(format!("next-{i}"));
        run(archive
            .barnacle("restore", &["--spool-dir", &spool_arg])
            .arg(&name)
            .arg(&dest))
        .ok("restore of the next segment");
        assert!(fs::read(&dest).unwrap() == fs::read(q).unwrap(), "{name}");
        verified += 1;
    }
    let scanned = assert_no_secret("full spool", &r, &secrets);
    note(
        "full disk",
        "wal-restore -p 4 with the spool on a filesystem with room for one prefetched segment",
        &r,
        None,
        format!(
            "the requested WAL restored (exit 0); {} of 3 prefetches spooled whole, the others \
             reported (\"No space left on device\") and later fetched from the store",
            spooled.len()
        ),
        verified,
        scanned,
    );
}

#[test]
fn a_full_disk_at_the_base_backup_destination() {
    let sample = sample_backup();
    let secrets = secrets(&sample.archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let disk = Tmpfs::mount("full-restore", "8m");
    let data = disk.dir.join("data");
    let r = run(sample
        .archive
        .barnacle("barman-cloud-restore", &[])
        .arg(&sample.id)
        .arg(&data));
    assert_eq!(r.code, 4, "restore onto a full disk: {r:#?}");
    r.one_line_error("no space left on device");
    // global/pg_control and backup_label come last: PostgreSQL refuses to start the rest.
    assert!(
        !data.join("global/pg_control").exists() && !data.join("backup_label").exists(),
        "a startable data directory was left: {:?}",
        entries(&data)
    );
    let scanned = assert_no_secret("full restore", &r, &secrets);
    let b = run(sample
        .archive
        .barman("barman-cloud-restore", &[])
        .arg(&sample.id)
        .arg(disk.dir.join("barman")));
    assert_eq!(b.code, r.code, "Barman's exit code differs: {b:#?}");
    note(
        "full disk",
        "barnacle restore of a 27 MB backup into an 8 MiB filesystem",
        &r,
        Some(&b),
        format!(
            "{}; the partial directory has no global/pg_control nor backup_label, so \
             PostgreSQL refuses to start it",
            message(&r)
        ),
        0,
        scanned,
    );
}

#[test]
fn a_store_that_refuses_writes() {
    let sample = sample_backup();
    let archive = clone_archive(&sample.archive, "read-only");
    let secrets = secrets(&archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let reader = |cmd: &mut std::process::Command| {
        cmd.env("AWS_ACCESS_KEY_ID", SEAWEED_READ_ONLY.0)
            .env("AWS_SECRET_ACCESS_KEY", SEAWEED_READ_ONLY.1);
    };
    let dir = harness::scratch("read-only");
    let name = wal_name(0x70);
    let seg = segment(&dir, &name, 1 << 20, 0x70);
    let keys_before = archive.keys();

    // walpush: exit 4, nothing stored; Barman agrees.
    let mut ours = archive.barnacle("walpush", &[]);
    reader(&mut ours);
    let r = run(ours.arg(&seg));
    assert_eq!(r.code, 4, "walpush refused: {r:#?}");
    r.one_line_error("AccessDenied");
    let mut theirs = archive.barman("barman-cloud-wal-archive", &[]);
    reader(&mut theirs);
    let b = run(theirs.arg(&seg));
    assert_eq!(b.code, 4, "Barman: {b:#?}");
    assert_eq!(archive.keys(), keys_before, "an object was stored");
    let scanned = assert_no_secret("read-only walpush", &r, &secrets);
    note(
        "store refuses writes",
        "walpush with credentials that may only read and list (403)",
        &r,
        Some(&b),
        format!("{}; nothing stored", message(&r)),
        0,
        scanned,
    );

    // A base backup: refused at its first write (the STARTED backup.info).
    let conn = connection(&sample.pg);
    let args: Vec<&str> = conn.iter().map(String::as_str).collect();
    let mut ours = archive.barnacle("barman-cloud-backup", &args);
    reader(&mut ours);
    let r = run(&mut ours);
    let mut theirs = archive.barman("barman-cloud-backup", &args);
    reader(&mut theirs);
    let b = run(&mut theirs);
    assert_eq!(
        r.code, b.code,
        "backup refused: barnacle {r:#?}\nBarman {b:#?}"
    );
    assert_ne!(r.code, 0);
    r.one_line_error("AccessDenied");
    assert_eq!(archive.keys(), keys_before, "an object was stored");
    assert!(archive.s3.multipart_uploads(&archive.bucket, "").is_empty());
    let scanned = assert_no_secret("read-only backup", &r, &secrets);
    note(
        "store refuses writes",
        "barnacle backup with credentials that may only read and list (403)",
        &r,
        Some(&b),
        format!("{}; nothing stored, no multipart upload", message(&r)),
        0,
        scanned,
    );

    // Deleting a backup: refused, the backup intact.
    let mut ours = archive.barnacle("barman-cloud-backup-delete", &["-b", &sample.id]);
    reader(&mut ours);
    let r = run(&mut ours);
    let mut theirs = archive.barman("barman-cloud-backup-delete", &["-b", &sample.id]);
    reader(&mut theirs);
    let b = run(&mut theirs);
    assert_eq!(
        r.code, b.code,
        "delete refused: barnacle {r:#?}\nBarman {b:#?}"
    );
    assert_ne!(r.code, 0);
    r.one_line_error("AccessDenied");
    assert_eq!(archive.keys(), keys_before, "an object was deleted");
    let scanned = assert_no_secret("read-only delete", &r, &secrets);
    note(
        "store refuses writes",
        "barman-cloud-backup-delete -b with credentials that may only read and list (403)",
        &r,
        Some(&b),
        format!("{}; the backup intact", message(&r)),
        0,
        scanned,
    );

    // Reading still works with those credentials.
    let wal = "000000010000000000000002";
    let mut ours = archive.barnacle("restore", &[]);
    reader(&mut ours);
    run(ours.arg(wal).arg(dir.join(wal))).ok("restore with read-only credentials");
}

#[test]
fn too_few_file_descriptors() {
    let sample = sample_backup();
    let archive = clone_archive(&sample.archive, "nofile");
    let secrets = secrets(&archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let dir = harness::scratch("nofile");
    let name = wal_name(0x80);
    let seg = segment(&dir, &name, 1 << 20, 0x80);

    // Each limit fails a different step: the runtime, the connection, the file.
    for (limit, cause) in [(6, "too many open files"), (9, "too many open files")] {
        let r = run(with_nofile(
            archive.barnacle("walpush", &[]).arg(&seg),
            limit,
        ));
        assert_eq!(r.code, 4, "walpush with {limit} descriptors: {r:#?}");
        r.one_line_error(cause);
        assert!(archive.keys().iter().all(|k| !k.contains(&name)), "stored");
        let scanned = assert_no_secret("nofile", &r, &secrets);
        note(
            "too many open files",
            &format!("walpush with RLIMIT_NOFILE {limit}"),
            &r,
            None,
            format!("{}; nothing stored", message(&r)),
            0,
            scanned,
        );
    }
    run(archive.barnacle("walpush", &[]).arg(&seg)).ok("walpush with enough descriptors");
    let verified = verify_wal(&archive, &seg);

    let dest = dir.join("pg_wal");
    fs::create_dir(&dest).unwrap();
    let r = run(with_nofile(
        archive
            .barnacle("restore", &[])
            .arg(&name)
            .arg(dest.join("RECOVERYXLOG")),
        9,
    ));
    assert_eq!(r.code, 4, "restore with 9 descriptors: {r:#?}");
    r.one_line_error("too many open files");
    assert!(entries(&dest).is_empty(), "{:?}", entries(&dest));
    let scanned = assert_no_secret("nofile", &r, &secrets);
    note(
        "too many open files",
        "wal-restore with RLIMIT_NOFILE 9",
        &r,
        None,
        format!("{}; nothing at the destination", message(&r)),
        verified,
        scanned,
    );

    // A base backup that runs out of descriptors: no backup left STARTED, uploads aborted.
    // How many descriptors a run needs varies from run to run (how many uploads and
    // connections overlap), so the limit is raised one at a time until the backup succeeds:
    // every run short of that must fail cleanly.
    let conn = connection(&sample.pg);
    let args: Vec<&str> = conn.iter().map(String::as_str).collect();
    let failures = until_enough(10..=64, |limit| {
        run(with_nofile(
            &mut archive.barnacle("barman-cloud-backup", &args),
            limit,
        ))
    });
    for (limit, r) in &failures {
        assert_eq!(r.code, 1, "backup with {limit} descriptors: {r:#?}");
        r.one_line_error("too many open files");
        assert!(archive.s3.multipart_uploads(&archive.bucket, "").is_empty());
    }
    let list =
        run(&mut archive.barnacle("barman-cloud-backup-list", &["--format", "json"])).ok("list");
    let statuses = |status: &str| {
        list.stdout
            .matches(&format!("\"status\": \"{status}\""))
            .count()
    };
    // Where the limit bites before `backup.info` STARTED is written nothing is stored; where
    // it bites later the backup is FAILED (the FAILED path itself: `faults`).
    assert_eq!(
        statuses("STARTED"),
        0,
        "a backup left STARTED: {}",
        list.stdout
    );
    let failed = statuses("FAILED");
    let (limit, r) = failures
        .last()
        .expect("until_enough returns at least one failure");
    let scanned = assert_no_secret("nofile backup", r, &secrets);
    note(
        "too many open files",
        &format!("barnacle backup with RLIMIT_NOFILE 10 to {limit}"),
        r,
        None,
        format!(
            "{}; {failed} backup.info FAILED, none STARTED, no multipart upload left",
            message(r)
        ),
        0,
        scanned,
    );

    // A base restore that cannot open its files: the same one-at-a-time raise.
    let failures = until_enough(6..=64, |limit| {
        let data = dir.join(format!("data-{limit}"));
        let r = run(with_nofile(
            archive
                .barnacle("barman-cloud-restore", &[])
                .arg(&sample.id)
                .arg(&data),
            limit,
        ));
        if r.code == 0 {
            assert!(
                data.join("global/pg_control").exists(),
                "restored without pg_control"
            );
        }
        r
    });
    for (limit, r) in &failures {
        assert_eq!(r.code, 4, "restore with {limit} descriptors: {r:#?}");
        r.one_line_error("too many open files");
        let data = dir.join(format!("data-{limit}"));
        assert!(
            !data.join("global/pg_control").exists(),
            "{limit}: pg_control restored"
        );
    }
    let (limit, r) = failures
        .last()
        .expect("until_enough returns at least one failure");
    let scanned = assert_no_secret("nofile restore", r, &secrets);
    note(
        "too many open files",
        &format!("barnacle restore with RLIMIT_NOFILE 6 to {limit}"),
        r,
        None,
        format!(
            "{}; no global/pg_control: PostgreSQL refuses to start it",
            message(r)
        ),
        0,
        scanned,
    );
}

/// Runs `attempt` with the descriptor limits of `limits` in turn until one exits 0, and
/// returns the runs that failed before it, with their limit. Fails the test when the first
/// limit already suffices (nothing was exhausted) or none does.
fn until_enough(
    limits: std::ops::RangeInclusive<u64>,
    mut attempt: impl FnMut(u64) -> Ran,
) -> Vec<(u64, Ran)> {
    let mut failures = Vec::new();
    for limit in limits.clone() {
        let r = attempt(limit);
        if r.code == 0 {
            assert!(
                !failures.is_empty(),
                "already succeeds with {limit} descriptors"
            );
            return failures;
        }
        failures.push((limit, r));
    }
    panic!(
        "still failing with {} descriptors: {failures:#?}",
        limits.end()
    );
}
