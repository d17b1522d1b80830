use chrono::NaiveDate;

use super::*;

fn info(status: BackupStatus, name: Option<&str>) -> BackupInfo {
    BackupInfo {
        status: Some(status),
        backup_name: name.map(str::to_string),
        ..BackupInfo::default()
    }
}

fn catalog() -> Vec<(String, BackupInfo)> {
    vec![
        (
            "20261101T000000".into(),
            info(BackupStatus::Failed, Some("f1")),
        ),
        (
            "20261102T000000".into(),
            info(BackupStatus::Done, Some("nightly")),
        ),
        ("20261103T000000".into(), info(BackupStatus::Failed, None)),
        (
            "20261104T000000".into(),
            info(BackupStatus::Done, Some("dup")),
        ),
        (
            "20261105T000000".into(),
            info(BackupStatus::Done, Some("dup")),
        ),
        ("20261106T000000".into(), info(BackupStatus::Started, None)),
    ]
}

fn resolved(id: &str, by: ResolvedBy) -> Result<Resolved, ResolveError> {
    Ok(Resolved {
        backup_id: id.into(),
        by,
    })
}

#[test]
fn ids_come_from_local_time() {
    let t = NaiveDate::from_ymd_opt(2026, 11, 27)
        .unwrap()
        .and_hms_opt(21, 49, 6)
        .unwrap();
    assert_eq!(BackupId::from_local_time(&t).as_str(), "20261127T214906");
    assert!(BackupId::now().as_str().parse::<BackupId>().is_ok());
    assert!("20261127T21490".parse::<BackupId>().is_err());
    assert!("20261127t214906".parse::<BackupId>().is_err());
}

#[test]
fn is_backup_id_mirrors_python_re_match() {
    assert!(is_backup_id("20261127T214906"));
    assert!(
        is_backup_id("20261127T214906\n"),
        "`$` matches before a final newline"
    );
    assert!(
        is_backup_id("٢٠٢٦١١٢٧T214906"),
        "`\\d` is any Unicode digit"
    );
    assert!(!is_backup_id("20261127T2149060"));
    assert!(!is_backup_id("20261127T214906\n\n"));
    assert!(!is_backup_id(" 20261127T214906"));
    assert!(!is_backup_id("2026-11-27"));
    assert!(
        !is_backup_id("²0261127T214906"),
        "superscripts are No, not Nd"
    );
}

#[test]
fn names_may_not_be_empty_id_like_or_reserved() {
    assert_eq!(check_backup_name("nightly"), Ok(()));
    assert_eq!(check_backup_name(""), Err(BackupNameError::Empty));
    assert_eq!(
        check_backup_name("20261127T214906")
            .unwrap_err()
            .to_string(),
        "Backup name '20261127T214906' is not allowed: backup ID"
    );
    for word in RESERVED_BACKUP_IDS {
        assert_eq!(
            check_backup_name(word).unwrap_err().to_string(),
            format!("Backup name '{word}' is not allowed: reserved word")
        );
    }
    assert_eq!(check_backup_name("Latest"), Ok(()));
}

#[test]
fn shortcuts_skip_started_but_count_failed() {
    let c = catalog();
    assert_eq!(
        resolve("latest", "pg", &c),
        resolved("20261105T000000", ResolvedBy::Shortcut)
    );
    assert_eq!(
        resolve("last", "pg", &c),
        resolved("20261105T000000", ResolvedBy::Shortcut)
    );
    assert_eq!(
        resolve("oldest", "pg", &c),
        resolved("20261101T000000", ResolvedBy::Shortcut)
    );
    assert_eq!(
        resolve("first", "pg", &c),
        resolved("20261101T000000", ResolvedBy::Shortcut)
    );
    assert_eq!(
        resolve("last-failed", "pg", &c),
        resolved("20261103T000000", ResolvedBy::Shortcut)
    );
}

#[test]
fn ids_are_taken_as_is_and_names_are_looked_up() {
    let c = catalog();
    assert_eq!(
        resolve("20991231T235959", "pg", &c),
        resolved("20991231T235959", ResolvedBy::Id)
    );
    assert_eq!(
        resolve("nightly", "pg", &c),
        resolved("20261102T000000", ResolvedBy::Name)
    );
    assert_eq!(
        resolve("dup", "pg", &c).unwrap_err().to_string(),
        "Multiple backups found matching name 'dup' (try using backup ID instead): \
         20261104T000000 20261105T000000"
    );
    assert_eq!(
        resolve("nope", "pg", &c).unwrap_err().to_string(),
        "Unknown backup 'nope' for server 'pg'"
    );
    assert!(matches!(
        resolve("latest-full", "pg", &c),
        Err(ResolveError::Unknown { .. })
    ));
}

#[test]
fn a_shortcut_that_finds_nothing_falls_back_to_names() {
    let empty: Vec<(String, BackupInfo)> = vec![];
    assert!(matches!(
        resolve("latest", "pg", &empty),
        Err(ResolveError::Unknown { .. })
    ));
    let only_started = vec![
        (
            "20261106T000000".to_string(),
            info(BackupStatus::Started, None),
        ),
        (
            "20261107T000000".to_string(),
            info(BackupStatus::Done, Some("last-failed")),
        ),
    ];
    // No FAILED backup: `last-failed` is then matched as a name.
    assert_eq!(
        resolve("last-failed", "pg", &only_started),
        resolved("20261107T000000", ResolvedBy::Name)
    );
}

#[test]
fn a_backup_id_line_changes_the_id_a_name_resolves_to() {
    let mut named = info(BackupStatus::Done, Some("x"));
    named.backup_id_override = Some(Some("20200101T000000".into()));
    let c = vec![("20261101T000000".to_string(), named)];
    assert_eq!(
        resolve("x", "pg", &c),
        resolved("20200101T000000", ResolvedBy::Name)
    );
    // Shortcuts use the key prefix.
    assert_eq!(
        resolve("latest", "pg", &c),
        resolved("20261101T000000", ResolvedBy::Shortcut)
    );
}
