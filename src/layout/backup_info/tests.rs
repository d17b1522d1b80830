use chrono::{FixedOffset, TimeZone};

use super::*;

/// Files written by Barman's own `BackupInfo.save` (`testdata/gen_backup_info.py`).
const WRITTEN: &[(&str, &str)] = &[
    (
        "spec_example",
        include_str!("../testdata/backup_info/spec_example.info"),
    ),
    (
        "done_pg17_gzip",
        include_str!("../testdata/backup_info/done_pg17_gzip.info"),
    ),
    (
        "failed_after_start",
        include_str!("../testdata/backup_info/failed_after_start.info"),
    ),
    (
        "failed_in_start",
        include_str!("../testdata/backup_info/failed_in_start.info"),
    ),
    (
        "started",
        include_str!("../testdata/backup_info/started.info"),
    ),
    (
        "quoted_label",
        include_str!("../testdata/backup_info/quoted_label.info"),
    ),
    (
        "waiting_postgres_mode",
        include_str!("../testdata/backup_info/waiting_postgres_mode.info"),
    ),
    (
        "snapshot_aws",
        include_str!("../testdata/backup_info/snapshot_aws.info"),
    ),
];

/// Hand-written inputs and what Barman's load + save writes for them.
const NORMALISED: &[(&str, &str, &str)] = &[
    (
        "messy",
        include_str!("../testdata/backup_info/messy.in"),
        include_str!("../testdata/backup_info/messy.out"),
    ),
    (
        "defaults",
        include_str!("../testdata/backup_info/defaults.in"),
        include_str!("../testdata/backup_info/defaults.out"),
    ),
    (
        "nulls",
        include_str!("../testdata/backup_info/nulls.in"),
        include_str!("../testdata/backup_info/nulls.out"),
    ),
];

#[test]
fn barman_written_files_round_trip_byte_for_byte() {
    for (name, text) in WRITTEN {
        let info = BackupInfo::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.to_text(), *text, "{name}");
    }
}

#[test]
fn load_then_save_normalises_like_barman() {
    for (name, input, expected) in NORMALISED {
        let info = BackupInfo::parse(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.to_text(), *expected, "{name}");
    }
}

#[test]
fn the_spec_example_is_typed() {
    let info = BackupInfo::parse(WRITTEN[0].1).unwrap();
    assert_eq!(info.status, Some(BackupStatus::Done));
    assert_eq!(info.backup_name.as_deref(), Some("first-backup"));
    assert_eq!(info.begin_offset, Some(40));
    assert_eq!(info.version, Some(150018));
    assert_eq!(info.server_name.as_deref(), Some("cloud"));
    assert_eq!(info.end_lsn().unwrap().unwrap().to_string(), "0/4000100");
    let utc = FixedOffset::east_opt(0).unwrap();
    assert_eq!(
        info.begin_time,
        Some(
            utc.with_ymd_and_hms(2026, 11, 27, 21, 49, 6).unwrap()
                + chrono::Duration::microseconds(941197)
        )
    );
    assert_eq!(
        info.tablespaces,
        Some(vec![Tablespace {
            name: "ts1".into(),
            oid: 16384,
            location: "/var/lib/postgresql/tablespaces/ts1".into(),
        }])
    );
    assert!(
        info.backup_label_text()
            .unwrap()
            .starts_with("START WAL LOCATION: 0/4000028")
    );
    assert_eq!(
        info.copy_stats.as_ref().and_then(|c| c.get("copy_time")),
        Some(&PyValue::Float(2.209464))
    );
    assert_eq!(info.backup_id_override, None);
}

#[test]
fn slot_names_are_accepted_and_backup_id_overrides() {
    let info = BackupInfo::parse("backup_id=X\nbackup_version=1\nfilename=/f\n").unwrap();
    assert_eq!(info.backup_id_override, Some(Some("X".into())));
    let info = BackupInfo::parse("backup_id=None\n").unwrap();
    assert_eq!(info.backup_id_override, Some(None));
}

#[test]
fn unknown_fields_are_fatal_with_barmans_message() {
    for (text, field) in [
        ("status=DONE\nnew_field=1\n", "new_field"),
        ("  # not a comment=1\n", "# not a comment"),
        ("EMPTY=1\n", "EMPTY"),
        ("is_incremental=1\n", "is_incremental"),
    ] {
        let err = BackupInfo::parse(text).unwrap_err();
        assert!(err.is_fatal(), "{text}");
        assert_eq!(err, BackupInfoError::UnsupportedField(field.into()));
    }
    assert_eq!(
        BackupInfoError::UnsupportedField("foo".into()).to_string(),
        "Unsupported field 'foo' found in backup metadata. This indicates the backup was \
         created with a newer version of Barman. Please upgrade to a compatible or newer version."
    );
}

#[test]
fn bad_lines_and_values_make_the_file_unreadable_but_are_not_fatal() {
    for text in [
        "foo\n",
        "version=abc\n",
        "version=1__0\n",
        "timeline=1.0\n",
        "begin_time=yesterday\n",
        "backup_label='unterminated\n",
        "tablespaces=[('a', 'x', '/p')]\n",
        "tablespaces=5\n",
        "snapshots_info={'provider': 'ibm', 'snapshots': []}\n",
        "snapshots_info={'provider': 'aws'}\n",
        "_fields=1\n",
    ] {
        let err = BackupInfo::parse(text).unwrap_err();
        assert!(!err.is_fatal(), "{text}: {err}");
    }
    assert_eq!(
        BackupInfo::parse("foo\n").unwrap_err().to_string(),
        "invalid line foo in file <UNKNOWN>"
    );
    // The first problem wins, as Barman reads line by line.
    assert!(BackupInfo::parse("version=x\nnew=1\n").is_err_and(|e| !e.is_fatal()));
    assert!(BackupInfo::parse("new=1\nversion=x\n").is_err_and(|e| e.is_fatal()));
    assert_eq!(
        BackupInfo::parse_bytes(b"status=DONE\nerror=\xff\n").unwrap_err(),
        BackupInfoError::NotUtf8 { line: 2 }
    );
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let text = "#c\n\n \t \nversion = 7 \r\n# status=FAILED\nstatus=DONE";
    let info = BackupInfo::parse(text).unwrap();
    assert_eq!(info.version, Some(7));
    assert_eq!(info.status, Some(BackupStatus::Done));
}

#[test]
fn python_int_rules() {
    assert_eq!(py_int("+12"), Some(12));
    assert_eq!(py_int("-0"), Some(0));
    assert_eq!(py_int("1_000"), Some(1000));
    assert_eq!(py_int("007"), Some(7));
    for bad in ["", "_1", "1_", "1__0", "0x10", "1.0", "1e3", "- 1"] {
        assert_eq!(py_int(bad), None, "{bad}");
    }
}

#[test]
fn times_read_like_dateutil_and_print_like_python() {
    let cases = [
        (
            "2026-11-27 21:49:06.941197+00:00",
            "2026-11-27 21:49:06.941197+00:00",
        ),
        ("2026-11-27T21:49:06Z", "2026-11-27 21:49:06+00:00"),
        (
            "2026-11-27 21:49:06.9411975+02:00",
            "2026-11-27 21:49:06.941197+02:00",
        ),
        (
            "2026-11-27 21:49:06.5-0530",
            "2026-11-27 21:49:06.500000-05:30",
        ),
        ("2026-11-27 21:49:06 +05", "2026-11-27 21:49:06+05:00"),
        ("2026-11-27 21:49:06 UTC", "2026-11-27 21:49:06+00:00"),
        ("20261127T214906Z", "2026-11-27 21:49:06+00:00"),
        ("2026-11-27T21:49+01:00", "2026-11-27 21:49:00+01:00"),
    ];
    for (input, expected) in cases {
        let t = parse_py_datetime(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(py_str(&t), expected, "{input}");
    }
    for bad in [
        "2026-11-27 21:49:06+05:30:15",
        "yesterday",
        "2026-13-01",
        "2026-11-27 25:00",
    ] {
        assert!(parse_py_datetime(bad).is_err(), "{bad}");
    }
    let t = parse_py_datetime("2026-11-07 01:02:03.000400+00:00").unwrap();
    assert_eq!(py_ctime(&t), "Sat Nov  7 01:02:03 2026");
    assert_eq!(py_isoformat(&t), "2026-11-07T01:02:03.000400+00:00");
    assert_eq!(py_strftime_list(&t), "2026-11-07 01:02:03");
}

#[test]
fn naive_times_are_local() {
    let t = parse_py_datetime("2026-07-01 12:00:00").unwrap();
    let local = chrono::Local
        .with_ymd_and_hms(2026, 7, 1, 12, 0, 0)
        .earliest()
        .unwrap();
    assert_eq!(t, local.fixed_offset());
}

#[test]
fn status_text_round_trips() {
    for s in [
        "EMPTY",
        "STARTED",
        "WAITING_FOR_WALS",
        "DONE",
        "SYNCING",
        "FAILED",
        "WEIRD",
    ] {
        assert_eq!(BackupStatus::parse(s).as_str(), s);
    }
    assert!(BackupStatus::WaitingForWals.is_copy_done());
    assert!(!BackupStatus::Failed.is_copy_done());
}

#[test]
fn a_constructed_backup_info_writes_all_fields_sorted() {
    let info = BackupInfo {
        status: Some(BackupStatus::Started),
        server_name: Some("cloud".into()),
        ..BackupInfo::default()
    };
    let text = info.to_text();
    let names: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
    let expected: Vec<&str> = FIELD_NAMES
        .iter()
        .copied()
        .filter(|n| *n != "backup_name" && *n != "snapshots_info")
        .collect();
    assert_eq!(names, expected);
    assert!(text.contains("\nstatus=STARTED\n"));
    assert!(text.ends_with("xlog_segment_size=16777216\n"));
    assert_eq!(BackupInfo::parse(&text).unwrap(), info);
}

mod never_panics {
    use proptest::prelude::*;

    use super::super::{BackupInfo, parse_py_datetime};

    proptest! {
        #[test]
        fn parse_accepts_or_refuses_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = BackupInfo::parse_bytes(&bytes);
        }

        #[test]
        fn parse_accepts_or_refuses_field_like_lines(
            name in prop::sample::select(super::FIELD_NAMES.to_vec()),
            value in "\\PC{0,30}",
        ) {
            if let Ok(info) = BackupInfo::parse(&format!("{name}={value}\n")) {
                // Whatever was accepted is written in a form that reads back the same.
                let text = info.to_text();
                prop_assert_eq!(BackupInfo::parse(&text).map(|i| i.to_text()), Ok(text));
            }
        }

        #[test]
        fn datetime_parser_never_panics(s in "[0-9T:. +Z-]{0,32}") {
            let _ = parse_py_datetime(&s);
        }
    }
}
