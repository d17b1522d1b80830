//! list / show / keep -s output, as Barman's clients print it.

use crate::layout::backup_id::effective_backup_id;
use crate::layout::backup_info::{BackupInfo, BackupStatus, Dumped, py_ctime, py_isoformat};
use crate::layout::backup_info::{py_str, py_strftime_list};
use crate::layout::pyliteral::{PyNumber, PyValue};

use super::json::dumps;
use super::pyfmt::{human_readable_seconds, pretty_size};
use super::{Entry, KeepTarget, RenderError};

/// Python's `"{:<N}".format(value)`: `None` has no format spec support.
fn pad(value: Option<&str>, width: usize) -> Result<String, RenderError> {
    value.map(|v| format!("{v:<width$}")).ok_or_else(|| {
        RenderError("unsupported format string passed to NoneType.__format__".into())
    })
}

fn sorted<'e, 'a>(entries: &'e [Entry<'a>]) -> Vec<&'e Entry<'a>> {
    let mut v: Vec<&Entry> = entries.iter().collect();
    v.sort_by(|a, b| a.backup_id.cmp(b.backup_id));
    v
}

/// `barman-cloud-backup-list` (console): a header and one row per backup,
/// sorted by id, columns `{:<20}{:<25}{:<30}{:<17}{:<20}`.
pub fn render_list_console(entries: &[Entry]) -> Result<String, RenderError> {
    let mut out = String::new();
    let row = |cols: [Option<&str>; 5]| -> Result<String, RenderError> {
        let widths = [20, 25, 30, 17, 20];
        let mut line = String::new();
        for (col, width) in cols.iter().zip(widths) {
            line.push_str(&pad(*col, width)?);
        }
        line.push('\n');
        Ok(line)
    };
    out.push_str(&row([
        Some("Backup ID"),
        Some("End Time"),
        Some("Begin Wal"),
        Some("Archival Status"),
        Some("Name"),
    ])?);
    for e in sorted(entries) {
        let info = e.info;
        let end_time = info
            .end_time
            .as_ref()
            .map(py_strftime_list)
            .unwrap_or_default();
        let archival = match &info.status {
            Some(BackupStatus::Done) => Some(match e.keep.map(KeepTarget::as_str) {
                Some(keep) if !keep.is_empty() => format!("KEEP:{}", keep.to_uppercase()),
                _ => String::new(),
            }),
            other => other.as_ref().map(|s| s.as_str().to_string()),
        };
        out.push_str(&row([
            e.keep_lookup_id(),
            Some(&end_time),
            Some(info.begin_wal.as_deref().unwrap_or("")),
            archival.as_deref(),
            Some(info.backup_name.as_deref().unwrap_or("")),
        ])?);
    }
    Ok(out)
}

/// `barman-cloud-backup-list --format json`:
/// `{"backups_list": [to_json(), ...]}` sorted by id.
pub fn render_list_json(entries: &[Entry]) -> Result<String, RenderError> {
    let list = sorted(entries)
        .into_iter()
        .map(|e| backup_info_json(e.backup_id, e.info))
        .collect();
    let doc = PyValue::Dict(vec![(s("backups_list"), PyValue::List(list))]);
    Ok(dumps(&doc)? + "\n")
}

/// `barman-cloud-backup-show --format json`: `{server_name: to_json()}`,
/// keyed by the `server_name` in the file (`cloud` for live backups).
pub fn render_show_json(backup_id: &str, info: &BackupInfo) -> Result<String, RenderError> {
    let key = info.server_name.clone().map_or(PyValue::None, PyValue::Str);
    let doc = PyValue::Dict(vec![(key, backup_info_json(backup_id, info))]);
    Ok(dumps(&doc)? + "\n")
}

/// `barman-cloud-backup-keep -s`.
pub fn render_keep_status(keep: Option<&KeepTarget>) -> String {
    match keep.map(KeepTarget::as_str) {
        Some(target) if !target.is_empty() => format!("Keep: {target}\n"),
        _ => "Keep: nokeep\n".to_string(),
    }
}

fn s(text: &str) -> PyValue {
    PyValue::Str(text.to_string())
}

/// `BackupInfo.to_json()` as a Python object: every field in file order
/// (dumped values, so `backup_label` is its repr text), with the raw
/// `copy_stats`, `included_files`, `snapshots_info` and `tablespaces` (as
/// lists), times as `ctime()`; then `backup_id`, `begin_time_iso`,
/// `end_time_iso`.
pub fn backup_info_json(backup_id: &str, info: &BackupInfo) -> PyValue {
    let raw = |v: &Option<PyValue>| v.clone().unwrap_or(PyValue::None);
    let mut pairs = Vec::new();
    for (name, dumped) in info.items() {
        let value = match name {
            "copy_stats" => raw(&info.copy_stats),
            "included_files" => raw(&info.included_files),
            "snapshots_info" => raw(&info.snapshots_info),
            "tablespaces" => match info.tablespaces_value() {
                Some(PyValue::List(items)) => PyValue::List(
                    items
                        .into_iter()
                        .map(|t| match t {
                            PyValue::Tuple(v) => PyValue::List(v),
                            other => other,
                        })
                        .collect(),
                ),
                _ => PyValue::None,
            },
            _ => match dumped {
                Dumped::None => PyValue::None,
                Dumped::Int(i) => PyValue::Int(i),
                Dumped::Str(text) => PyValue::Str(text),
                Dumped::Time(t) => PyValue::Str(py_ctime(&t)),
            },
        };
        pairs.push((s(name), value));
    }
    let id = effective_backup_id(backup_id, info).map_or(PyValue::None, s);
    pairs.push((s("backup_id"), id));
    if let Some(t) = &info.begin_time {
        pairs.push((s("begin_time_iso"), s(&py_isoformat(t))));
    }
    if let Some(t) = &info.end_time {
        pairs.push((s("end_time_iso"), s(&py_isoformat(t))));
    }
    PyValue::Dict(pairs)
}

/// Python `str()` of an optional value (`None` prints as `None`).
fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "None".to_string(), T::to_string)
}

fn truthy(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

struct Out(String);

impl Out {
    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }
    fn row(&mut self, key: &str, value: &str) {
        self.line(&format!("  {key:<23}: {value}"));
    }
    fn header(&mut self, title: &str) {
        self.line(&format!("  {title}:"));
    }
    fn nested(&mut self, key: &str, value: &str) {
        self.line(&format!("    {key:<21}: {value}"));
    }
}

/// `barman-cloud-backup-show` (console):
/// `ConsoleOutputWriter.render_show_backup(backup_info.to_dict())`.
pub fn render_show_console(backup_id: &str, info: &BackupInfo) -> Result<String, RenderError> {
    let mut o = Out(String::new());
    let id = effective_backup_id(backup_id, info).unwrap_or("None");
    o.line(&format!("Backup {id}:"));
    let copy_done = info.status.as_ref().is_some_and(BackupStatus::is_copy_done);

    // render_show_backup_general
    if let Some(name) = truthy(&info.backup_name) {
        o.row("Backup Name", name);
    }
    o.row("Server Name", &opt(&info.server_name));
    if let Some(systemid) = truthy(&info.systemid) {
        o.row("System Id", systemid);
    }
    o.row("Status", &opt(&info.status));
    if copy_done {
        o.row("PostgreSQL Version", &opt(&info.version));
        o.row("PGDATA directory", &opt(&info.pgdata));
        if let Some(size) = info.cluster_size.filter(|s| *s != 0) {
            o.row("Estimated Cluster Size", &pretty_size(size as f64));
        }
    }
    o.line("");

    // render_show_backup_server
    let checksums = truthy(&info.data_checksums);
    let summarize = truthy(&info.summarize_wal);
    if checksums.is_some() || summarize.is_some() {
        o.header("Server information");
        if let Some(c) = checksums {
            o.nested("Checksums", c);
        }
        if let Some(sw) = summarize {
            o.nested("WAL summarizer", sw);
        }
        o.line("");
    }

    if !copy_done {
        if let Some(error) = truthy(&info.error) {
            o.row("Error", error);
        }
        return Ok(o.0);
    }
    if let Some(snap) = &info.snapshots_info {
        show_snapshots(&mut o, snap)?;
    }
    if let Some(list) = info.tablespaces.as_ref().filter(|l| !l.is_empty()) {
        o.header("Tablespaces");
        for t in list {
            o.nested(&t.name, &format!("{} (oid: {})", t.location, t.oid));
        }
        o.line("");
    }
    show_base(&mut o, info)?;
    // render_show_backup_catalog_info: only `mode == "postgres"` applies.
    if info.mode.as_deref() == Some("postgres") {
        if let Dumped::Str(ids) = children(info) {
            o.nested("Children Backup(s)", &ids);
        }
    }
    Ok(o.0)
}

fn children(info: &BackupInfo) -> Dumped {
    match &info.children_backup_ids {
        Some(ids) if !ids.is_empty() => Dumped::Str(ids.join(",")),
        _ => Dumped::None,
    }
}

/// `render_show_backup_snapshots` over the canonical `snapshots_info` dict.
fn show_snapshots(o: &mut Out, snap: &PyValue) -> Result<(), RenderError> {
    let bad = || RenderError("snapshots_info is not in Barman's form".into());
    let PyValue::Dict(pairs) = snap else {
        return Err(bad());
    };
    o.header("Snapshot information");
    for (k, v) in pairs {
        let key = k.py_str();
        if key != "snapshots" && key != "provider_info" {
            o.nested(&key, &v.py_str());
        }
    }
    if let Some(PyValue::Dict(info)) = snap.get("provider_info") {
        for (k, v) in info {
            o.nested(&k.py_str(), &v.py_str());
        }
    }
    o.line("");
    let Some(PyValue::List(snapshots)) = snap.get("snapshots") else {
        return Err(bad());
    };
    for meta in snapshots {
        let Some(PyValue::Dict(provider)) = meta.get("provider") else {
            return Err(bad());
        };
        let mut fields: Vec<(String, String)> = provider
            .iter()
            .map(|(k, v)| (k.py_str(), v.py_str()))
            .collect();
        fields.sort();
        for (k, v) in fields {
            o.nested(&k, &v);
        }
        let mount = meta.get("mount");
        let field = |f: &str| {
            mount
                .and_then(|m| m.get(f))
                .map_or("None".into(), PyValue::py_str)
        };
        o.nested("Mount point", &field("mount_point"));
        o.nested("Mount options", &field("mount_options"));
        o.line("");
    }
    Ok(())
}

/// A `copy_stats` entry used as a number (Python raises on anything else).
fn stat_number(stats: &PyValue, key: &str) -> Result<PyNumber, RenderError> {
    match stats.get(key) {
        None => Ok(PyNumber::Int(0)),
        Some(v) => v.as_number().ok_or_else(|| {
            RenderError(format!("copy_stats['{key}'] is not a number: {}", v.repr()))
        }),
    }
}

/// `render_show_backup_base` with what `to_dict()` has (no backup_type,
/// wal_size, copy_time or estimated_throughput keys).
fn show_base(o: &mut Out, info: &BackupInfo) -> Result<(), RenderError> {
    o.header("Base backup information");
    if let Some(mode) = truthy(&info.mode) {
        o.nested("Backup Method", mode);
    }
    if let Some(enc) = truthy(&info.encryption) {
        o.nested("Encryption", enc);
    }
    if let Some(size) = info.deduplicated_size.filter(|s| *s != 0) {
        o.nested("Backup Size", &pretty_size(size as f64));
    }
    if let Some(c) = truthy(&info.compression).filter(|c| *c != "none") {
        o.nested("Backup Compression", c);
    }
    o.nested("Timeline", &opt(&info.timeline));
    o.nested("Begin WAL", &opt(&info.begin_wal));
    o.nested("End WAL", &opt(&info.end_wal));
    o.nested(
        "Begin time",
        &info.begin_time.as_ref().map_or("None".into(), py_str),
    );
    o.nested(
        "End time",
        &info.end_time.as_ref().map_or("None".into(), py_str),
    );
    if let Some(stats) = info.copy_stats.as_ref().filter(|s| s.is_truthy()) {
        if !matches!(stats, PyValue::Dict(_)) {
            return Err(RenderError(format!(
                "'{}' object has no attribute 'get'",
                py_type(stats)
            )));
        }
        let copy_time = stat_number(stats, "copy_time")?;
        if copy_time.as_f64() != 0.0 {
            let mut text = human_readable_seconds(copy_time)?;
            let analysis = stat_number(stats, "analysis_time")?;
            if analysis.as_f64() >= 1.0 {
                text.push_str(&format!(" + {} startup", human_readable_seconds(analysis)?));
            }
            o.nested("Copy time", &text);
        }
    }
    o.nested("Begin Offset", &opt(&info.begin_offset));
    o.nested("End Offset", &opt(&info.end_offset));
    o.nested("Begin LSN", &opt(&info.begin_xlog));
    o.nested("End LSN", &opt(&info.end_xlog));
    o.line("");
    Ok(())
}

fn py_type(v: &PyValue) -> &'static str {
    match v {
        PyValue::None => "NoneType",
        PyValue::Bool(_) => "bool",
        PyValue::Int(_) => "int",
        PyValue::Float(_) => "float",
        PyValue::Str(_) => "str",
        PyValue::List(_) => "list",
        PyValue::Tuple(_) => "tuple",
        PyValue::Dict(_) => "dict",
    }
}
