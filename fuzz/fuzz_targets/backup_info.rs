//! The `backup.info` reader (`layout::backup_info::BackupInfo::parse_bytes`)
//! and the Python-literal parser under it (`layout::pyliteral::PyValue`):
//! never panic; a parsed literal's `repr` parses again, to the same `repr`
//! (unless it holds an infinite or NaN float: `repr(1e999)` is `inf`, which
//! is no literal, in CPython too).
#![no_main]

use barnacle::layout::backup_info::BackupInfo;
use barnacle::layout::pyliteral::PyValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = BackupInfo::parse_bytes(data) {
        let _ = (info.begin_lsn(), info.end_lsn(), info.backup_label_text());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = PyValue::parse(text) {
        let _ = (value.py_str(), value.is_truthy(), value.is_hashable());
        if !finite(&value) {
            return;
        }
        let repr = value.repr();
        let again = PyValue::parse(&repr)
            .unwrap_or_else(|e| panic!("repr {repr:?} of {text:?} does not parse: {e}"));
        assert_eq!(again.repr(), repr, "repr is not stable for {text:?}");
    }
});

/// No infinite or NaN float anywhere in `v`.
fn finite(v: &PyValue) -> bool {
    match v {
        PyValue::Float(f) => f.is_finite(),
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().all(finite),
        PyValue::Dict(pairs) => pairs.iter().all(|(k, v)| finite(k) && finite(v)),
        _ => true,
    }
}
