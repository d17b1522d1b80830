//! Unit tests: policy parsing, the report, files, WAL names, rendering,
//! apply, and a 120 000-key listing.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

use super::*;
use crate::catalog::KeepTarget;
use crate::catalog::load::Catalog;
use crate::layout::ServerPrefix;
use crate::layout::backup_info::{BackupInfo, BackupStatus, Tablespace};

fn window(value: u64, unit: WindowUnit) -> Policy {
    Policy::RecoveryWindow(RecoveryWindow { value, unit })
}

#[test]
fn barman_policy_forms_parse() {
    let cases = [
        ("REDUNDANCY 3", Policy::Redundancy(3)),
        ("  redundancy\t007 \n", Policy::Redundancy(7)),
        ("Redundancy 0", Policy::Redundancy(0)),
        (
            "redundancy 99999999999999999999999",
            Policy::Redundancy(u64::MAX),
        ),
        ("REDUNDANCY \u{0663}", Policy::Redundancy(3)),
        ("RECOVERY WINDOW OF 30 DAYS", window(30, WindowUnit::Days)),
        ("recovery window of 1 day", window(1, WindowUnit::Days)),
        (
            "Recovery  Window\u{a0}Of 2 Weeks ",
            window(2, WindowUnit::Weeks),
        ),
        (
            "RECOVERY WINDOW OF 1 WEE\u{212a}\u{17f}",
            window(1, WindowUnit::Weeks),
        ),
        (
            "RECOVERY W\u{131}NDOW OF 3 MONTH",
            window(3, WindowUnit::Months),
        ),
        ("RECOVERY WINDOW OF 0 DAYS", window(0, WindowUnit::Days)),
        ("30d", window(30, WindowUnit::Days)),
        ("4w", window(4, WindowUnit::Weeks)),
        ("3m", window(3, WindowUnit::Months)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_policy(text), Ok(expected), "{text:?}");
    }
}

#[test]
fn policies_display_as_barman_str() {
    assert_eq!(
        parse_policy("redundancy 02").map(|p| p.to_string()),
        Ok("REDUNDANCY 2".into())
    );
    assert_eq!(
        parse_policy("3m").map(|p| p.to_string()),
        Ok("RECOVERY WINDOW OF 3 MONTHS".into())
    );
    assert_eq!(
        window(2, WindowUnit::Months).to_string(),
        "RECOVERY WINDOW OF 2 MONTHS"
    );
    assert_eq!(
        cnpg_to_barman("60d").as_deref(),
        Some("RECOVERY WINDOW OF 60 DAYS")
    );
    for bad in ["0d", "30", "d", "30D", " 30d", "30d ", "3y", "+3d", "3dd"] {
        assert_eq!(cnpg_to_barman(bad), None, "{bad:?}");
    }
}

#[test]
fn bad_policies_are_refused_like_barman() {
    for text in [
        "REDUNDANCY -1",
        "REDUNDANCY",
        "REDUNDANCY 1 2",
        "RECOVERY WINDOW OF 1 DAYSS",
        "RECOVERY WINDOW OF 1 YEAR",
        "RECOVERY WINDOW 1 DAY",
        "RECOVERYWINDOW OF 1 DAY",
        "30 days",
        "",
    ] {
        let err = parse_policy(text).expect_err(text);
        assert_eq!(err.exit_code(), 3, "{text:?}");
        assert_eq!(
            err.barman_log(),
            format!(
                "Could not create retention policy {text}: Cannot parse option \
                 retention_policy: {text}"
            )
        );
    }
    let crash = |text: &str| parse_policy(text).map_err(|e| (e.exit_code(), e.barman_log()));
    let exception = "Barman cloud backup delete exception: ";
    assert_eq!(
        crash(" MAIN "),
        Err((
            4,
            format!("{exception}'NoneType' object has no attribute 'unit'")
        ))
    );
    assert_eq!(
        crash("RECOVERY WINDOW OF 1000000000 DAYS"),
        Err((
            4,
            format!("{exception}days=1000000000; must have magnitude <= 999999999")
        ))
    );
    assert_eq!(
        crash("RECOVERY WINDOW OF 400000000 WEEKS"),
        Err((
            4,
            format!("{exception}Python int too large to convert to C int")
        ))
    );
    assert!(parse_policy("RECOVERY WINDOW OF 32258064 MONTHS").is_ok());
    let long = format!("REDUNDANCY {}", "1".repeat(4301));
    assert!(crash(&long).is_err_and(|(code, msg)| code == 4 && msg.contains("4300 digits")));
}

fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<FixedOffset> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0)
        .single()
        .map(|t| t.fixed_offset())
        .expect("valid date")
}

fn seg(tli: u32, n: u32) -> String {
    format!("{tli:08X}{:08X}{:08X}", n >> 8, n & 0xFF)
}

fn done(tli: u32, begin: u32, end: u32, end_time: DateTime<FixedOffset>) -> BackupInfo {
    BackupInfo {
        status: Some(BackupStatus::Done),
        timeline: Some(i64::from(tli)),
        begin_wal: Some(seg(tli, begin)),
        end_wal: Some(seg(tli, end)),
        end_time: Some(end_time),
        ..BackupInfo::default()
    }
}

/// A bucket with `backups` (id, info, keep) and segments 1..=`segments` on timeline 1.
fn inventory(backups: Vec<(&str, BackupInfo, Option<KeepTarget>)>, segments: u32) -> Inventory {
    let prefix = ServerPrefix::new("bkt", "pg");
    let mut catalog = Catalog::default();
    for (id, info, keep) in backups {
        catalog.keys.push(prefix.backup_info_key(id));
        catalog
            .keys
            .push(format!("{}data.tar.gz", prefix.backup_dir(id)));
        if let Some(keep) = keep {
            catalog.keys.push(prefix.keep_key(id));
            catalog.keep.insert(id.to_string(), keep);
        }
        catalog.backups.push((id.to_string(), info));
    }
    catalog.backups.sort_by(|a, b| a.0.cmp(&b.0));
    let wals = (1..=segments)
        .map(|n| format!("{}0000000100000000/{}.gz", prefix.wals_root(), seg(1, n)))
        .chain([format!("{}00000002.history", prefix.wals_root())])
        .collect();
    Inventory::new(prefix, "pg", catalog, wals)
}

fn four_backups() -> Inventory {
    inventory(
        vec![
            ("20260101T000000", done(1, 2, 2, utc(2026, 1, 1, 1)), None),
            (
                "20260102T000000",
                done(1, 4, 4, utc(2026, 1, 2, 1)),
                Some(KeepTarget::Full),
            ),
            ("20260103T000000", done(1, 6, 6, utc(2026, 1, 3, 1)), None),
            ("20260104T000000", done(1, 8, 8, utc(2026, 1, 4, 1)), None),
        ],
        9,
    )
}

fn policy(text: &str, minimum_redundancy: u64) -> Request {
    Request::Policy {
        policy: parse_policy(text).expect("policy"),
        minimum_redundancy,
    }
}

#[test]
fn redundancy_counts_kept_backups_and_reports_statuses() {
    let inv = four_backups();
    let now = utc(2026, 1, 10, 0);
    let p = plan(&inv, &policy("REDUNDANCY 2", 0), Mode::Execute, &now).expect("plan");
    let report: Vec<(&str, &str)> = p
        .report
        .iter()
        .map(|(i, s)| (i.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        report,
        [
            ("20260104T000000", "VALID"),
            ("20260103T000000", "VALID"),
            ("20260102T000000", "KEEP:FULL"),
            ("20260101T000000", "OBSOLETE"),
        ]
    );
    assert_eq!(p.deleted_backups(), ["20260101T000000"]);
    let alone = retention_report(&inv, &Policy::Redundancy(2), 0, &now);
    assert_eq!((alone.statuses, alone.crash), (p.report.clone(), None));
    let d = &p.deletions[0];
    assert_eq!(
        d.objects(),
        [
            "bkt/pg/base/20260101T000000/data.tar.gz",
            "bkt/pg/base/20260101T000000/backup.info"
        ]
    );
    // Nothing before it: WALs up to the next backup's begin_wal go.
    assert_eq!(d.wal_keys.len(), 3);
    assert!(d.wal_keys.iter().all(|k| !k.contains(&seg(1, 4))));
}

#[test]
fn recovery_window_keeps_the_backup_that_reaches_the_window_start() {
    let inv = four_backups();
    let now = utc(2026, 1, 5, 0);
    let p = plan(
        &inv,
        &policy("RECOVERY WINDOW OF 2 DAYS", 0),
        Mode::Execute,
        &now,
    )
    .expect("plan");
    let statuses: Vec<&str> = p.report.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["VALID", "VALID", "KEEP:FULL", "OBSOLETE"]);
    // The kept backup that reaches the window start counts as the third valid one.
    let p = plan(
        &inv,
        &policy("RECOVERY WINDOW OF 2 DAYS", 3),
        Mode::Execute,
        &now,
    )
    .expect("plan");
    assert_eq!(p.deleted_backups(), ["20260101T000000"]);
    let p = plan(
        &inv,
        &policy("RECOVERY WINDOW OF 2 DAYS", 4),
        Mode::Execute,
        &now,
    )
    .expect("plan");
    let statuses: Vec<&str> = p.report.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["VALID", "VALID", "KEEP:FULL", "OBSOLETE*"]);
    assert_eq!(
        p.barman_log(),
        [
            "WARNING: Keeping obsolete backup 20260101T000000 for server pg (older than \
          2026-01-03 00:00:00+00:00) due to minimum redundancy requirements (4)"
        ]
    );
    assert!(p.deletions.is_empty());
}

#[test]
fn a_full_keep_before_the_deleted_backup_blocks_wal_removal() {
    let inv = four_backups();
    let req = Request::Backup {
        identifier: "20260103T000000".into(),
        minimum_redundancy: 0,
    };
    let p = plan(&inv, &req, Mode::DryRun, &utc(2026, 1, 10, 0)).expect("plan");
    assert_eq!(
        render_dry_run(&p),
        "Skipping deletion of objects ['bkt/pg/base/20260103T000000/data.tar.gz', \
         'bkt/pg/base/20260103T000000/backup.info'] due to --dry-run option\n"
    );
}

#[test]
fn backup_requests_are_refused_like_barman() {
    let inv = four_backups();
    let now = utc(2026, 1, 10, 0);
    let req = |id: &str, m| Request::Backup {
        identifier: id.into(),
        minimum_redundancy: m,
    };
    let err = plan(&inv, &req("20260102T000000", 0), Mode::Execute, &now).expect_err("keep");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("as it has a current keep request"));
    let err = plan(&inv, &req("20260101T000000", 4), Mode::Execute, &now).expect_err("-m");
    assert_eq!(
        err.to_string(),
        "Skipping delete of backup 20260101T000000 for server pg due to minimum redundancy \
         requirements (minimum redundancy = 4, current redundancy = 4)"
    );
    let p = plan(&inv, &req("20991231T000000", 0), Mode::Execute, &now).expect("unknown id");
    assert_eq!(
        p.barman_log(),
        ["WARNING: Backup 20991231T000000 does not exist"]
    );
    assert_eq!((p.exit_code(), p.deletions.len()), (0, 0));
    let err = plan(&inv, &req("nightly", 0), Mode::Execute, &now).expect_err("name");
    assert_eq!(err.exit_code(), 4);
    let p = plan(&inv, &req("oldest", 3), Mode::Execute, &now).expect("shortcut");
    assert_eq!(p.deleted_backups(), ["20260101T000000"]);
}

#[test]
fn history_files_are_never_deleted_and_apply_then_plan_deletes_nothing() {
    let mut inv = four_backups();
    let now = utc(2026, 1, 10, 0);
    let req = policy("REDUNDANCY 1", 0);
    let p = plan(&inv, &req, Mode::Execute, &now).expect("plan");
    assert_eq!(p.deleted_backups(), ["20260101T000000", "20260103T000000"]);
    assert!(
        p.deletions
            .iter()
            .flat_map(|d| &d.wal_keys)
            .all(|k| !k.ends_with(".history"))
    );
    inv.apply(&p);
    assert_eq!(inv.catalog.backups.len(), 2);
    assert!(inv.wal_keys.iter().any(|k| k.ends_with("00000002.history")));
    assert!(
        !inv.catalog
            .keys
            .iter()
            .any(|k| k.contains("20260101T000000"))
    );
    let again = plan(&inv, &req, Mode::Execute, &now).expect("plan again");
    assert!(again.deletions.is_empty());
}

#[test]
fn point_of_recoverability_follows_the_local_wall_clock() {
    use chrono_tz::America::New_York;
    let w = |days| RecoveryWindow {
        value: days,
        unit: WindowUnit::Days,
    };
    // 7 days before 2026-03-15 12:00 EDT is 2026-03-08 12:00 EDT: 6 days 23 h.
    let now = New_York
        .with_ymd_and_hms(2026, 3, 15, 12, 0, 0)
        .single()
        .expect("now");
    let point = point_of_recoverability(&now, &w(7)).expect("point");
    assert_eq!(point.to_rfc3339(), "2026-03-08T12:00:00-04:00");
    // In the spring gap: the offset after it.
    let now = New_York
        .with_ymd_and_hms(2026, 3, 9, 2, 30, 0)
        .single()
        .expect("now");
    let point = point_of_recoverability(&now, &w(1)).expect("point");
    assert_eq!(point.to_rfc3339(), "2026-03-08T02:30:00-04:00");
    // In the autumn overlap: the DST offset.
    let now = New_York
        .with_ymd_and_hms(2026, 11, 2, 1, 30, 0)
        .single()
        .expect("now");
    let point = point_of_recoverability(&now, &w(1)).expect("point");
    assert_eq!(point.to_rfc3339(), "2026-11-01T01:30:00-04:00");
    let point = point_of_recoverability(&utc(2026, 1, 1, 0), &w(999_999_999));
    assert_eq!(
        point.map_err(|c| c.message),
        Err("date value out of range".into())
    );
}

#[test]
fn tablespaces_parts_and_unknown_extensions() {
    let mut inv = four_backups();
    let dir = inv.prefix.backup_dir("20260101T000000");
    let (_, info) = &mut inv.catalog.backups[0];
    info.tablespaces = Some(vec![Tablespace {
        name: "t".into(),
        oid: 16384,
        location: "/t".into(),
    }]);
    for f in [
        "16384.tar",
        "16384_0001.tar",
        "data_0002.tar.gz",
        "data_0001.tar.gz",
        "data.tar.zst",
    ] {
        inv.catalog.keys.push(format!("{dir}{f}"));
    }
    let p = plan(
        &inv,
        &policy("REDUNDANCY 3", 0),
        Mode::Execute,
        &utc(2026, 1, 10, 0),
    );
    let p = p.expect("plan");
    let files: Vec<&str> = p.deletions[0]
        .files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap_or(f))
        .collect();
    assert_eq!(
        files,
        [
            "data.tar.gz",
            "data_0001.tar.gz",
            "data_0002.tar.gz",
            "16384.tar",
            "16384_0001.tar"
        ]
    );
    assert_eq!(
        p.barman_log(),
        ["WARNING: Skipping unknown extension: tar.zst"]
    );
    // An extra part nobody can read makes Barman's sort compare None.
    inv.catalog.keys.push(format!("{dir}data_0003.tar.zst"));
    let p = plan(
        &inv,
        &policy("REDUNDANCY 3", 0),
        Mode::Execute,
        &utc(2026, 1, 10, 0),
    );
    let abort = p.expect("plan").abort.expect("crash");
    assert_eq!(abort.backup_id.as_deref(), Some("20260101T000000"));
    assert!(
        abort
            .crash
            .message
            .starts_with("'<' not supported between instances of")
    );
}

#[test]
fn a_large_listing_is_planned_quickly() {
    // 60 backups on one timeline, 120 000 WAL keys (470 hash directories).
    let prefix = ServerPrefix::new("", "pg");
    let mut catalog = Catalog::default();
    let t0 = utc(2026, 1, 1, 0);
    for i in 0..60u32 {
        let id = format!("202601{:02}T{:02}0000", 1 + i / 24, i % 24);
        catalog.keys.push(prefix.backup_info_key(&id));
        let end = t0 + chrono::TimeDelta::hours(i64::from(i));
        catalog
            .backups
            .push((id, done(1, 2000 * i + 5, 2000 * i + 6, end)));
    }
    let wals: Vec<String> = (0..120_000u32)
        .rev()
        .map(|n| format!("pg/wals/{}/{}", &seg(1, n)[..16], seg(1, n)))
        .collect();
    let inv = Inventory::new(prefix, "pg", catalog, wals);
    let started = std::time::Instant::now();
    for mode in [Mode::Execute, Mode::DryRun] {
        let p = plan(&inv, &policy("REDUNDANCY 5", 0), mode, &utc(2026, 3, 1, 0)).expect("plan");
        assert_eq!(p.deletions.len(), 55);
        let mut gone = inv.clone();
        gone.apply(&p);
        let first_kept = seg(1, 2000 * 55 + 5);
        assert!(
            gone.wal_keys
                .iter()
                .all(|k| k.rsplit('/').next() >= Some(first_kept.as_str()))
        );
        assert_eq!(gone.wal_keys.len(), 120_000 - 2000 * 55 - 5);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
