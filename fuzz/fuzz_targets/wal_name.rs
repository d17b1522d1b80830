//! The WAL-name parser (`pg::WalName::parse`, Barman's `is_any_xlog_file`):
//! never panics, and what it accepts is self-consistent.
#![no_main]

use barnacle::pg::{WalKind, WalName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(wal) = WalName::parse(text) else {
        return;
    };
    // The name kept is the basename given, and it parses again to the same thing.
    assert!(text.ends_with(wal.as_str()));
    assert_eq!(WalName::parse(wal.as_str()).as_ref(), Ok(&wal));
    assert!(WalName::is_valid(wal.as_str()));
    let _ = wal.hash_dir();
    match wal.kind() {
        WalKind::History => assert!(wal.log_id().is_none() && wal.segment_part().is_none()),
        _ => assert!(wal.log_id().is_some() && wal.segment_part().is_some()),
    }
    let _ = (wal.timeline(), wal.is_partial(), wal.is_backup_history());
});
