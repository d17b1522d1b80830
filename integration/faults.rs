//! S3 faults injected between barnacle and SeaweedFS by the fault proxy: transient ones
//! (a few 500/503 SlowDown answers, connections reset mid-request or mid-response, a lost or
//! truncated answer, latency below `--read-timeout`, a short outage) must turn into success
//! with the archive intact; persistent ones into one clear line and Barman's exit code, with
//! nothing half-written left behind.
//!
//! What object_store retries by itself (max_retries 4, backoff from 100 ms): 5xx and 429
//! answers for every request, the conditional PUT included; connection failures; timeouts and
//! cuts of idempotent requests; broken object bodies (re-read with a range). What barnacle
//! adds (src/storage/s3.rs): the conditional PUT of a WAL is sent again after a timeout or a
//! cut (`If-None-Match: *` makes that safe: a copy that landed answers 412, and its checksum
//! is compared), and a listing whose answer breaks in transit is asked for again.

use std::fs;
use std::time::{Duration, Instant};

use crate::backup_support::{connection, newest_backup_id, primary};
use crate::fault_proxy::{Fault, Rule};
use crate::harness;
use crate::reliability_summary::{Record, assert_no_secret, record};
use crate::reliability_support::{
    FaultArchive, assert_no_temp_files, message, segment, verify_wal, wal_name,
};
use crate::support::{Ran, run};

const AREA: &str = "S3 faults";

/// One transient case: rules to install, then the command must succeed.
struct Case {
    what: &'static str,
    kind: &'static str,
    rules: Vec<Rule>,
}

fn case(what: &'static str, kind: &'static str, rules: Vec<Rule>) -> Case {
    Case { what, kind, rules }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Records a case that ended as it must.
#[allow(clippy::too_many_arguments)]
fn note(
    kind: &str,
    case: String,
    injected: u64,
    ran: &Ran,
    result: String,
    verified: u64,
    scanned: u64,
) {
    record(Record {
        injected,
        exit: Some(ran.code),
        result,
        verified,
        scanned,
        ..Record::new(AREA, kind, case)
    });
}

/// The statuses the server gave to the PUTs of `name`, in order (None: not answered).
fn put_statuses(fa: &FaultArchive, name: &str) -> Vec<Option<u16>> {
    fa.proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains(name))
        .map(|s| {
            if s.fault.is_some_and(|f| {
                matches!(f, Fault::Status(_) | Fault::SlowDown | Fault::ResetRequest)
            }) {
                None
            } else {
                s.status
            }
        })
        .collect()
}

#[test]
fn walpush_rides_out_transient_faults() {
    let fa = FaultArchive::new("faults-push");
    let secrets = fa.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let dir = harness::scratch("faults-push");
    let put = || Rule::on("PUT");
    let list = || Rule::on("GET").query("list-type");
    let cases = vec![
        case(
            "PUT answered 500 InternalError twice",
            "HTTP 5xx",
            vec![put().fault(Fault::Status(500)).times(2)],
        ),
        case(
            "conditional PUT (If-None-Match: *) answered 503 SlowDown three times",
            "HTTP 503 SlowDown",
            vec![
                put()
                    .header("if-none-match")
                    .fault(Fault::SlowDown)
                    .times(3),
            ],
        ),
        case(
            "PUT reset mid-request (body half sent)",
            "reset mid-request",
            vec![put().fault(Fault::ResetRequest)],
        ),
        case(
            "PUT stored, then the answer lost (reset)",
            "response lost",
            vec![put().fault(Fault::LoseResponse)],
        ),
        case(
            "PUT stored, then the connection closed unanswered",
            "response lost",
            vec![put().fault(Fault::CloseBeforeResponse)],
        ),
        case(
            "PUT stored, answer held past --read-timeout 1",
            "latency",
            vec![put().fault(Fault::DelayResponse(ms(1600)))],
        ),
        case(
            "PUT delayed 400 ms twice (under --read-timeout)",
            "latency",
            vec![put().fault(Fault::Delay(ms(400))).times(2)],
        ),
        case(
            "listing answered 503 SlowDown twice",
            "HTTP 503 SlowDown",
            vec![list().fault(Fault::SlowDown).times(2)],
        ),
        case(
            "listing answer truncated",
            "truncated body",
            vec![list().fault(Fault::Truncate)],
        ),
        case(
            "listing answer reset mid-body",
            "reset mid-response",
            vec![list().fault(Fault::ResetResponse)],
        ),
        case(
            "listing reset mid-request, then 500",
            "reset mid-request",
            vec![
                list().fault(Fault::ResetRequest),
                list().fault(Fault::Status(500)),
            ],
        ),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let name = wal_name(0x10 + i as u64);
        let seg = segment(&dir, &name, 2 << 20, i as u64);
        fa.proxy.clear();
        for rule in c.rules {
            fa.proxy.add(rule.path(&name));
        }
        let before = fa.proxy.injected_total();
        let started = Instant::now();
        let r = run(fa.via_proxy("walpush", &["--read-timeout", "1"]).arg(&seg));
        let injected = fa.proxy.injected_total() - before;
        assert_eq!(r.code, 0, "walpush with {}: {r:#?}", c.what);
        assert!(injected > 0, "{}: no fault was injected", c.what);
        let scanned = assert_no_secret(c.what, &r, &secrets);
        let statuses = put_statuses(&fa, &name);
        // A PUT the server stored but whose answer was lost is sent again: 412, then the
        // checksum comparison says "same content".
        if c.kind == "response lost" || c.what.contains("past --read-timeout") {
            assert_eq!(statuses, [Some(200), Some(412)], "{}: PUTs seen", c.what);
        }
        let verified = verify_wal(&fa.archive, &seg);
        note(
            c.kind,
            format!("walpush: {}", c.what),
            injected,
            &r,
            format!(
                "archived in {:.1} s, restored byte-identical ({} PUT{} sent)",
                started.elapsed().as_secs_f64(),
                statuses.len(),
                if statuses.len() == 1 { "" } else { "s" }
            ),
            verified,
            scanned,
        );
    }

    // A WAL already archived: the checksum check (HEAD) meets 500s.
    let name = wal_name(0x10);
    let seg = dir.join(&name);
    fa.proxy.clear();
    fa.proxy.add(
        Rule::on("HEAD")
            .path(&name)
            .fault(Fault::Status(500))
            .times(2),
    );
    let puts = fa.proxy.count("PUT", &name);
    let r = run(fa.via_proxy("walpush", &[]).arg(&seg));
    assert_eq!(
        r.code, 0,
        "walpush of an archived WAL with HEAD 500s: {r:#?}"
    );
    assert_eq!(fa.proxy.count("PUT", &name), puts, "no second upload");
    let scanned = assert_no_secret("HEAD 500", &r, &secrets);
    note(
        "HTTP 5xx",
        "walpush again: checksum HEAD answered 500 twice".into(),
        2,
        &r,
        "already archived with the same content; nothing uploaded".into(),
        verify_wal(&fa.archive, &seg),
        scanned,
    );

    // A 300 ms outage (connections refused): the retries' backoff outlasts it.
    let name = wal_name(0x30);
    let seg = segment(&dir, &name, 2 << 20, 0x30);
    fa.proxy.clear();
    fa.proxy.outage(ms(300));
    let r = run(fa.via_proxy("walpush", &[]).arg(&seg));
    assert_eq!(r.code, 0, "walpush across a 300 ms outage: {r:#?}");
    let scanned = assert_no_secret("outage", &r, &secrets);
    note(
        "outage",
        "walpush: store down 300 ms (connections refused)".into(),
        1,
        &r,
        "archived after the outage, restored byte-identical".into(),
        verify_wal(&fa.archive, &seg),
        scanned,
    );
}

#[test]
fn walpush_fails_cleanly_on_persistent_faults() {
    let fa = FaultArchive::new("faults-push-hard");
    let secrets = fa.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let dir = harness::scratch("faults-push-hard");
    let cases: Vec<(&str, &str, Rule, &str, usize)> = vec![
        (
            "every PUT answered 503 SlowDown",
            "HTTP 503 SlowDown",
            Rule::on("PUT").fault(Fault::SlowDown).always(),
            "SlowDown",
            5,
        ),
        (
            "every PUT reset mid-request",
            "reset mid-request",
            Rule::on("PUT").fault(Fault::ResetRequest).always(),
            "reset",
            3,
        ),
        (
            "every listing answered 500",
            "HTTP 5xx",
            Rule::on("GET")
                .query("list-type")
                .fault(Fault::Status(500))
                .always(),
            "InternalError",
            0,
        ),
        (
            "every listing answer truncated",
            "truncated body",
            Rule::on("GET")
                .query("list-type")
                .fault(Fault::Truncate)
                .always(),
            "LIST",
            0,
        ),
    ];
    for (i, (what, kind, rule, cause, puts)) in cases.into_iter().enumerate() {
        let name = wal_name(0x40 + i as u64);
        let seg = segment(&dir, &name, 1 << 20, 0x40 + i as u64);
        fa.proxy.clear();
        fa.proxy.add(rule.path(&name));
        let before = fa.proxy.injected_total();
        let started = Instant::now();
        let r = run(fa.via_proxy("walpush", &[]).arg(&seg));
        let elapsed = started.elapsed();
        assert_eq!(r.code, 4, "walpush with {what}: {r:#?}");
        r.one_line_error(cause);
        assert!(
            elapsed < Duration::from_secs(20),
            "{what}: gave up only after {elapsed:?}"
        );
        assert_eq!(fa.proxy.count("PUT", &name), puts, "{what}: PUT attempts");
        let scanned = assert_no_secret(what, &r, &secrets);
        // Nothing was stored (a 503 or a cut request never reached the server).
        assert!(
            fa.archive.keys().iter().all(|k| !k.contains(&name)),
            "{what}: an object was stored"
        );
        note(
            kind,
            format!("walpush: {what}"),
            fa.proxy.injected_total() - before,
            &r,
            format!("{} (after {:.1} s)", message(&r), elapsed.as_secs_f64()),
            0,
            scanned,
        );
        // Once the store behaves, PostgreSQL's next try archives it.
        fa.proxy.clear();
        run(fa.via_proxy("walpush", &[]).arg(&seg)).ok("walpush once the store behaves");
        verify_wal(&fa.archive, &seg);
    }

    // An outage longer than the retries: a quick, clear failure; the next try succeeds.
    let name = wal_name(0x50);
    let seg = segment(&dir, &name, 1 << 20, 0x50);
    fa.proxy.outage(Duration::from_secs(600));
    let started = Instant::now();
    let r = run(fa.via_proxy("walpush", &[]).arg(&seg));
    let elapsed = started.elapsed();
    fa.proxy.end_outage();
    assert_eq!(r.code, 4, "walpush during an outage: {r:#?}");
    r.one_line_error("cannot reach");
    let scanned = assert_no_secret("outage", &r, &secrets);
    note(
        "outage",
        "walpush: store down (connections refused) until the retries give up".into(),
        1,
        &r,
        format!("{} (after {:.1} s)", message(&r), elapsed.as_secs_f64()),
        0,
        scanned,
    );
    std::thread::sleep(ms(100));
    run(fa.via_proxy("walpush", &[]).arg(&seg)).ok("walpush after the outage");
    verify_wal(&fa.archive, &seg);
}

#[test]
fn wal_restore_rides_out_transient_faults_and_fails_cleanly_on_persistent_ones() {
    let fa = FaultArchive::new("faults-restore");
    let secrets = fa.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let dir = harness::scratch("faults-restore");
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    let segs: Vec<_> = (0..24u64)
        .map(|i| segment(&src, &wal_name(0x60 + i), 2 << 20, 0x60 + i))
        .collect();
    for s in &segs {
        run(fa.direct("walpush", &[]).arg(s)).ok("walpush");
    }
    let get = |name: &str| Rule::on("GET").path(name).no_query("list-type");
    let list = || Rule::on("GET").query("list-type");
    let dest_dir = dir.join("pg_wal");
    fs::create_dir(&dest_dir).unwrap();
    let transient: Vec<(&str, &str, Vec<Rule>)> = vec![
        (
            "GET answered 500 twice",
            "HTTP 5xx",
            vec![get("").fault(Fault::Status(500)).times(2)],
        ),
        (
            "GET answered 503 SlowDown twice",
            "HTTP 503 SlowDown",
            vec![get("").fault(Fault::SlowDown).times(2)],
        ),
        (
            "GET reset mid-request",
            "reset mid-request",
            vec![get("").fault(Fault::ResetRequest)],
        ),
        (
            "GET answer reset mid-body",
            "reset mid-response",
            vec![get("").fault(Fault::ResetResponse)],
        ),
        (
            "GET answer truncated twice",
            "truncated body",
            vec![get("").fault(Fault::Truncate).times(2)],
        ),
        (
            "GET answer lost (reset)",
            "response lost",
            vec![get("").fault(Fault::LoseResponse)],
        ),
        (
            "GET answer held past --read-timeout 1",
            "latency",
            vec![get("").fault(Fault::DelayResponse(ms(1600)))],
        ),
        (
            "GET delayed 400 ms (under --read-timeout)",
            "latency",
            vec![get("").fault(Fault::Delay(ms(400)))],
        ),
        (
            "listing answered 500, then truncated",
            "truncated body",
            vec![
                list().fault(Fault::Status(500)),
                list().fault(Fault::Truncate),
            ],
        ),
        (
            "listing answer reset mid-body twice",
            "reset mid-response",
            vec![list().fault(Fault::ResetResponse).times(2)],
        ),
    ];
    for (i, (what, kind, rules)) in transient.into_iter().enumerate() {
        let seg = &segs[i];
        let name = wal_name(0x60 + i as u64);
        fa.proxy.clear();
        for rule in rules {
            fa.proxy.add(rule.path(&name));
        }
        let dest = dest_dir.join("RECOVERYXLOG");
        let before = fa.proxy.injected_total();
        let started = Instant::now();
        let r = run(fa
            .via_proxy("restore", &["--read-timeout", "1"])
            .arg(&name)
            .arg(&dest));
        let injected = fa.proxy.injected_total() - before;
        assert_eq!(r.code, 0, "restore with {what}: {r:#?}");
        assert!(injected > 0, "{what}: no fault was injected");
        assert!(
            fs::read(&dest).unwrap() == fs::read(seg).unwrap(),
            "{what}: restored content differs"
        );
        assert_no_temp_files(what, &dest_dir);
        fs::remove_file(&dest).unwrap();
        let scanned = assert_no_secret(what, &r, &secrets);
        note(
            kind,
            format!("wal-restore: {what}"),
            injected,
            &r,
            format!(
                "restored byte-identical in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            1,
            scanned,
        );
    }

    // A 300 ms outage.
    let name = wal_name(0x60 + 10);
    fa.proxy.clear();
    fa.proxy.outage(ms(300));
    let dest = dest_dir.join("RECOVERYXLOG");
    let r = run(fa.via_proxy("restore", &[]).arg(&name).arg(&dest));
    assert_eq!(r.code, 0, "restore across a 300 ms outage: {r:#?}");
    assert!(fs::read(&dest).unwrap() == fs::read(&segs[10]).unwrap());
    fs::remove_file(&dest).unwrap();
    let scanned = assert_no_secret("outage", &r, &secrets);
    note(
        "outage",
        "wal-restore: store down 300 ms (connections refused)".into(),
        1,
        &r,
        "restored byte-identical after the outage".into(),
        1,
        scanned,
    );

    // Persistent faults: exit 4, one line, no destination file, no temp file. (For
    // PostgreSQL any failure means "not available now"; it asks again.)
    let persistent: Vec<(&str, &str, Rule, &str)> = vec![
        (
            "every GET answered 500",
            "HTTP 5xx",
            get("").fault(Fault::Status(500)).always(),
            "InternalError",
        ),
        (
            "every GET answer truncated",
            "truncated body",
            get("").fault(Fault::Truncate).always(),
            "GET",
        ),
        (
            "every GET answer reset mid-body",
            "reset mid-response",
            get("").fault(Fault::ResetResponse).always(),
            "GET",
        ),
        (
            "every listing answered 503 SlowDown",
            "HTTP 503 SlowDown",
            list().fault(Fault::SlowDown).always(),
            "SlowDown",
        ),
    ];
    for (i, (what, kind, rule, cause)) in persistent.into_iter().enumerate() {
        let name = wal_name(0x60 + 11 + i as u64);
        fa.proxy.clear();
        fa.proxy.add(rule.path(&name));
        let before = fa.proxy.injected_total();
        let started = Instant::now();
        let r = run(fa.via_proxy("restore", &[]).arg(&name).arg(&dest));
        let elapsed = started.elapsed();
        assert_eq!(r.code, 4, "restore with {what}: {r:#?}");
        r.one_line_error(cause);
        assert!(!dest.exists(), "{what}: a destination file was left");
        assert_no_temp_files(what, &dest_dir);
        let scanned = assert_no_secret(what, &r, &secrets);
        note(
            kind,
            format!("wal-restore: {what}"),
            fa.proxy.injected_total() - before,
            &r,
            format!(
                "{} (after {:.1} s); no file at the destination",
                message(&r),
                elapsed.as_secs_f64()
            ),
            0,
            scanned,
        );
    }
    fa.proxy.outage(Duration::from_secs(600));
    let r = run(fa
        .via_proxy("restore", &[])
        .arg(wal_name(0x60 + 15))
        .arg(&dest));
    fa.proxy.end_outage();
    assert_eq!(r.code, 4, "restore during an outage: {r:#?}");
    r.one_line_error("cannot reach");
    assert!(!dest.exists());
    let scanned = assert_no_secret("outage", &r, &secrets);
    note(
        "outage",
        "wal-restore: store down until the retries give up".into(),
        1,
        &r,
        format!("{}; no file at the destination", message(&r)),
        0,
        scanned,
    );

    // Every answer held past --read-timeout: each attempt gives up after 1 s, the retries
    // are bounded, and the failure is one line.
    let name = wal_name(0x60 + 20);
    fa.proxy.clear();
    fa.proxy
        .add(get(&name).fault(Fault::DelayResponse(ms(1500))).always());
    let before = fa.proxy.injected_total();
    let started = Instant::now();
    let r = run(fa
        .via_proxy("restore", &["--read-timeout", "1"])
        .arg(&name)
        .arg(&dest));
    let elapsed = started.elapsed();
    let injected = fa.proxy.injected_total() - before;
    assert_eq!(r.code, 4, "restore with every answer late: {r:#?}");
    r.one_line_error("timed out");
    assert!(!dest.exists());
    assert_no_temp_files("late answers", &dest_dir);
    assert!(
        elapsed < Duration::from_secs(20) && (2..=8).contains(&injected),
        "{injected} attempts in {elapsed:?}"
    );
    let scanned = assert_no_secret("late answers", &r, &secrets);
    note(
        "latency",
        "wal-restore --read-timeout 1: every GET answer held 1.5 s".into(),
        injected,
        &r,
        format!(
            "{} ({injected} attempts, {:.1} s); no file at the destination",
            message(&r),
            elapsed.as_secs_f64()
        ),
        0,
        scanned,
    );

    // Prefetch (-p 4) where one of the prefetched objects always fails: the request is
    // served, the spool holds whole files only, and the failed one is fetched later.
    let spool = dir.join("spool");
    let spool_arg = spool.display().to_string();
    let first = 0x60 + 16;
    fa.proxy.clear();
    fa.proxy
        .add(get(&wal_name(first + 2)).fault(Fault::Truncate).always());
    let before = fa.proxy.injected_total();
    let r = run(fa
        .via_proxy("restore", &["-p", "4", "--spool-dir", &spool_arg])
        .arg(wal_name(first))
        .arg(&dest));
    assert_eq!(r.code, 0, "restore -p 4 with a failing prefetch: {r:#?}");
    let prefetch_faults = fa.proxy.injected_total() - before;
    assert!(fs::read(&dest).unwrap() == fs::read(&segs[16]).unwrap());
    fs::remove_file(&dest).unwrap();
    assert_no_temp_files("spool", &spool);
    let spooled: Vec<String> = crate::reliability_support::entries(&spool)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(
        spooled,
        [wal_name(first + 1), wal_name(first + 3)],
        "whole prefetched files only"
    );
    fa.proxy.clear();
    for n in 1..4 {
        let r = run(fa
            .via_proxy("restore", &["-p", "4", "--spool-dir", &spool_arg])
            .arg(wal_name(first + n))
            .arg(&dest));
        assert_eq!(r.code, 0, "{r:#?}");
        assert!(fs::read(&dest).unwrap() == fs::read(&segs[16 + n as usize]).unwrap());
        fs::remove_file(&dest).unwrap();
    }
    let scanned = assert_no_secret("prefetch", &r, &secrets);
    note(
        "truncated body",
        "wal-restore -p 4: one prefetched object always truncated".into(),
        prefetch_faults,
        &r,
        "request served; the spool held only whole files; the failed one was fetched on its turn"
            .into(),
        4,
        scanned,
    );
}

#[test]
fn backup_list_restore_and_delete_ride_out_faults() {
    let fa = FaultArchive::new("faults-backup");
    let secrets = fa.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let primary = primary(&fa.archive, "faults-backup", 1);
    let conn = connection(&primary.pg);
    let conn: Vec<&str> = conn.iter().map(String::as_str).collect();
    let backup = |name: &str| {
        let mut args = conn.clone();
        args.extend(["--no-compression", "-J", "2", "-n", name]);
        fa.via_proxy("barnacle backup", &args)
    };

    // Transient faults on every step of the multipart upload and on backup.info.
    let part = || Rule::on("PUT").query("partNumber");
    for rule in [
        Rule::on("POST").query("uploads").fault(Fault::SlowDown),
        part().fault(Fault::Status(500)),
        part().fault(Fault::ResetRequest).skip(1),
        part().fault(Fault::LoseResponse).skip(1),
        part().fault(Fault::CloseBeforeResponse).skip(1),
        Rule::on("POST").query("uploadId").fault(Fault::Status(500)),
        Rule::on("PUT")
            .path("backup.info")
            .fault(Fault::SlowDown)
            .skip(1),
    ] {
        fa.proxy.add(rule);
    }
    let started = Instant::now();
    let r = run(&mut backup("faulty"));
    let injected = fa.proxy.injected_total();
    assert_eq!(r.code, 0, "backup with transient faults: {r:#?}");
    let parts = fa
        .proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.query.contains("partNumber"))
        .count();
    assert!(parts >= 5, "expected several parts, saw {parts} part PUTs");
    assert!(fa.proxy.injected().len() >= 4, "{:?}", fa.proxy.injected());
    assert!(
        fa.archive
            .s3
            .multipart_uploads(&fa.archive.bucket, "")
            .is_empty(),
        "uploads left"
    );
    let id = newest_backup_id(&fa.archive);
    let list = run(&mut fa.direct("barman-cloud-backup-list", &["--format", "json"])).ok("list");
    assert!(
        list.stdout.contains("\"status\": \"DONE\""),
        "{}",
        list.stdout
    );
    let scanned = assert_no_secret("backup", &r, &secrets);
    note(
        "multipart upload",
        format!(
            "barnacle backup: 503 on CreateMultipartUpload, 500 / reset mid-request / answer lost (reset) / answer lost (closed) on parts, 500 on CompleteMultipartUpload, 503 on backup.info ({parts} part PUTs)"
        ),
        injected,
        &r,
        format!(
            "DONE in {:.1} s; no multipart upload left",
            started.elapsed().as_secs_f64()
        ),
        0,
        scanned,
    );

    // list through 503s and a truncated backup.info answer: the same output as without faults.
    fa.proxy.clear();
    fa.proxy.add(
        Rule::on("GET")
            .query("list-type")
            .fault(Fault::SlowDown)
            .times(2),
    );
    fa.proxy
        .add(Rule::on("GET").path("backup.info").fault(Fault::Truncate));
    let before = fa.proxy.injected_total();
    let faulty = run(&mut fa.via_proxy("barman-cloud-backup-list", &["--format", "json"]));
    assert_eq!(faulty.code, 0, "{faulty:#?}");
    assert_eq!(
        faulty.stdout, list.stdout,
        "list output differs under faults"
    );
    let scanned = assert_no_secret("list", &faulty, &secrets);
    note(
        "HTTP 503 SlowDown",
        "barnacle list: listing 503 ×2, backup.info answer truncated".into(),
        fa.proxy.injected_total() - before,
        &faulty,
        "the same JSON as without faults".into(),
        0,
        scanned,
    );

    // Restore of the base backup through faults on the tar GETs, then recovery from the
    // archive (WAL through the proxy too): the data is all there.
    fa.proxy.clear();
    fa.proxy
        .add(Rule::on("GET").path("data.tar").fault(Fault::Truncate));
    fa.proxy
        .add(Rule::on("GET").path("data.tar").fault(Fault::Status(500)));
    fa.proxy.add(
        Rule::on("GET")
            .path(".tar")
            .fault(Fault::ResetResponse)
            .skip(1),
    );
    let dest = harness::scratch("faults-backup-restore");
    let data = dest.join("data");
    let ts = dest.join("ts1");
    let before = fa.proxy.injected_total();
    let r = run(fa
        .via_proxy(
            "barman-cloud-restore",
            &[
                "--recovery-conf",
                "--tablespace",
                &format!("ts1:{}", ts.display()),
            ],
        )
        .arg(&id)
        .arg(&data));
    assert_eq!(r.code, 0, "restore with faults: {r:#?}");
    let injected = fa.proxy.injected_total() - before;
    assert!(injected >= 3, "{:?}", fa.proxy.seen());
    let pg = crate::backup_support::recover_and_check(&fa.archive, &data, Some(&ts), None, None);
    assert_eq!(pg.psql("select count(*) from in_ts1"), "50000");
    assert_eq!(pg.psql("select count(*) from pgbench_accounts"), "100000");
    drop(pg);
    let scanned = assert_no_secret("restore", &r, &secrets);
    note(
        "truncated body",
        "barnacle restore: tar GETs truncated, answered 500, reset mid-body".into(),
        injected,
        &r,
        "restored; PostgreSQL recovered it from the archive with every row".into(),
        1,
        scanned,
    );

    // Persistent failure of the parts: FAILED, exit 1, every multipart upload aborted.
    fa.proxy.clear();
    fa.proxy
        .add(part().fault(Fault::Status(500)).skip(1).always());
    let before = fa.proxy.injected_total();
    let r = run(&mut backup("doomed"));
    assert_eq!(r.code, 1, "backup with parts always failing: {r:#?}");
    assert!(r.stderr.contains("InternalError"), "{r:#?}");
    assert!(
        fa.archive
            .s3
            .multipart_uploads(&fa.archive.bucket, "")
            .is_empty(),
        "uploads left after a failed backup"
    );
    fa.proxy.clear();
    let json = run(&mut fa.direct("barman-cloud-backup-list", &["--format", "json"])).ok("list");
    assert!(
        json.stdout.contains("\"status\": \"FAILED\""),
        "{}",
        json.stdout
    );
    let scanned = assert_no_secret("failed backup", &r, &secrets);
    note(
        "HTTP 5xx",
        "barnacle backup: every part after the first answered 500".into(),
        fa.proxy.injected_total() - before,
        &r,
        format!(
            "{}; backup.info FAILED, no multipart upload left",
            message(&r)
        ),
        0,
        scanned,
    );

    // Delete (bulk DeleteObjects) through 500s, then through a lost answer: a re-run converges.
    fa.proxy.clear();
    fa.proxy.add(
        Rule::on("POST")
            .query("delete")
            .fault(Fault::Status(500))
            .times(2),
    );
    let before = fa.proxy.injected_total();
    let doomed = backup_id_named(&json.stdout, "doomed");
    let r = run(&mut fa.via_proxy("barman-cloud-backup-delete", &["-b", &doomed]));
    assert_eq!(r.code, 0, "delete with 500s: {r:#?}");
    assert!(
        fa.archive
            .keys()
            .iter()
            .all(|k| !k.contains(&format!("base/{doomed}/"))),
        "FAILED backup still there"
    );
    let scanned = assert_no_secret("delete", &r, &secrets);
    note(
        "HTTP 5xx",
        "barman-cloud-backup-delete -b: DeleteObjects answered 500 twice".into(),
        fa.proxy.injected_total() - before,
        &r,
        "deleted".into(),
        0,
        scanned,
    );

    fa.proxy.clear();
    fa.proxy.add(
        Rule::on("POST")
            .query("delete")
            .fault(Fault::LoseResponse)
            .always(),
    );
    let before = fa.proxy.injected_total();
    let r = run(&mut fa.via_proxy("barman-cloud-backup-delete", &["-b", &id]));
    let injected = fa.proxy.injected_total() - before;
    fa.proxy.clear();
    if r.code != 0 {
        assert_eq!(r.code, 1, "delete with lost answers (Barman: 1): {r:#?}");
        r.one_line_error("could not delete backup");
    }
    let again = run(&mut fa.via_proxy("barman-cloud-backup-delete", &["-b", &id]));
    let list = run(&mut fa.direct("barman-cloud-backup-list", &["--format", "json"])).ok("list");
    assert!(
        !list.stdout.contains(&id),
        "backup {id} survived the re-run: {again:#?}\n{}",
        list.stdout
    );
    let scanned =
        assert_no_secret("delete", &r, &secrets) + assert_no_secret("delete", &again, &secrets);
    note(
        "response lost",
        "barman-cloud-backup-delete -b: every DeleteObjects answer lost".into(),
        injected,
        &r,
        format!(
            "{}; a re-run converged (exit {})",
            if r.code == 0 {
                "deleted".to_string()
            } else {
                message(&r)
            },
            again.code
        ),
        0,
        scanned,
    );
}

/// The id of the backup named `name` in a JSON listing.
fn backup_id_named(json: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON listing");
    v["backups_list"]
        .as_array()
        .expect("backups_list")
        .iter()
        .find(|b| b["backup_name"] == name)
        .and_then(|b| b["backup_id"].as_str())
        .unwrap_or_else(|| panic!("no backup named {name} in {json}"))
        .to_string()
}
