//! Writing: `FieldListFile.items()` and `save()`.

use chrono::{DateTime, FixedOffset};

use super::{BackupInfo, FIELD_NAMES, py_str};
use crate::layout::pyliteral::PyValue;

/// A field value as `FieldListFile.items()` yields it: after the field's
/// dump function, before `str()`.
#[derive(Debug, Clone, PartialEq)]
pub enum Dumped {
    None,
    Int(i64),
    Str(String),
    Time(DateTime<FixedOffset>),
}

impl Dumped {
    /// `str(value)`, as written after `name=`.
    pub fn to_py_str(&self) -> String {
        match self {
            Dumped::None => "None".to_string(),
            Dumped::Int(i) => i.to_string(),
            Dumped::Str(s) => s.clone(),
            Dumped::Time(t) => py_str(t),
        }
    }
}

impl BackupInfo {
    /// `FieldListFile.items()`: (name, dumped value) in file order, without
    /// the null `backup_name`/`snapshots_info`.
    pub fn items(&self) -> Vec<(&'static str, Dumped)> {
        let s = |v: &Option<String>| v.clone().map_or(Dumped::None, Dumped::Str);
        let i = |v: &Option<i64>| v.map_or(Dumped::None, Dumped::Int);
        let t = |v: &Option<DateTime<FixedOffset>>| v.map_or(Dumped::None, Dumped::Time);
        let lit = |v: &Option<PyValue>| match v {
            Some(v) if v.is_truthy() => Dumped::Str(v.repr()),
            _ => Dumped::None,
        };
        let mut out = Vec::with_capacity(FIELD_NAMES.len());
        for name in FIELD_NAMES {
            let value = match name {
                "backup_label" => lit(&self.backup_label),
                "backup_name" => s(&self.backup_name),
                "begin_offset" => i(&self.begin_offset),
                "begin_time" => t(&self.begin_time),
                "begin_wal" => s(&self.begin_wal),
                "begin_xlog" => s(&self.begin_xlog),
                "children_backup_ids" => match &self.children_backup_ids {
                    Some(ids) if !ids.is_empty() => Dumped::Str(ids.join(",")),
                    _ => Dumped::None,
                },
                "cluster_size" => i(&self.cluster_size),
                "compression" => s(&self.compression),
                "config_file" => s(&self.config_file),
                "copy_stats" => lit(&self.copy_stats),
                "data_checksums" => s(&self.data_checksums),
                "deduplicated_size" => i(&self.deduplicated_size),
                "encryption" => s(&self.encryption),
                "end_offset" => i(&self.end_offset),
                "end_time" => t(&self.end_time),
                "end_wal" => s(&self.end_wal),
                "end_xlog" => s(&self.end_xlog),
                "error" => s(&self.error),
                "hba_file" => s(&self.hba_file),
                "ident_file" => s(&self.ident_file),
                "included_files" => lit(&self.included_files),
                "mode" => s(&self.mode),
                "parent_backup_id" => s(&self.parent_backup_id),
                "pgdata" => s(&self.pgdata),
                "server_name" => s(&self.server_name),
                "size" => i(&self.size),
                "snapshots_info" => match &self.snapshots_info {
                    Some(v) => Dumped::Str(v.repr()),
                    None => Dumped::None,
                },
                "status" => self
                    .status
                    .as_ref()
                    .map_or(Dumped::None, |st| Dumped::Str(st.as_str().to_string())),
                "summarize_wal" => s(&self.summarize_wal),
                "systemid" => s(&self.systemid),
                "tablespaces" => match self.tablespaces_value() {
                    Some(v) if v.is_truthy() => Dumped::Str(v.repr()),
                    _ => Dumped::None,
                },
                "timeline" => i(&self.timeline),
                "version" => i(&self.version),
                _ => i(&self.xlog_segment_size),
            };
            if value == Dumped::None && matches!(name, "backup_name" | "snapshots_info") {
                continue;
            }
            out.push((name, value));
        }
        out
    }

    /// The file text exactly as Barman's `save()` writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in self.items() {
            out.push_str(name);
            out.push('=');
            out.push_str(&value.to_py_str());
            out.push('\n');
        }
        out
    }

    /// `tablespaces` as the Python list of tuples Barman holds.
    pub fn tablespaces_value(&self) -> Option<PyValue> {
        self.tablespaces.as_ref().map(|list| {
            PyValue::List(
                list.iter()
                    .map(|t| {
                        PyValue::Tuple(vec![
                            PyValue::Str(t.name.clone()),
                            PyValue::Int(t.oid),
                            PyValue::Str(t.location.clone()),
                        ])
                    })
                    .collect(),
            )
        })
    }
}
