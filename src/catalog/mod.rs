//! The backup catalogue as the barman-cloud tools show it (spec §7, §8):
//! pure rendering of what `barman-cloud-backup-list [--format json]`,
//! `barman-cloud-backup-show [--format json]` and `barman-cloud-backup-keep
//! -s` print, byte for byte, plus the recoverability summary CloudNativePG
//! shows. The rendering does no I/O; [`load`] reads the catalogue from the
//! store (each `backup.info` and keep annotation, dropping unreadable ones as
//! Barman's `CloudBackupCatalog` does) for the commands to render.
//!
//! Mirrors `barman/clients/cloud_backup_{list,show,keep}.py`,
//! `BackupInfo.to_dict/to_json` (infofile.py), `ConsoleOutputWriter.
//! render_show_backup` (output.py), `pretty_size` and
//! `human_readable_timedelta` (utils.py), `AnnotationManagerCloud`
//! (annotations.py). Every function returns the full stdout text, final
//! newline included. An `Err` is where Barman's code raises: the command then
//! logs "Barman cloud backup <list|show|keep> exception: <message>" and exits 4.

mod json;
pub mod load;
mod pyfmt;
mod render;
mod status;

pub use pyfmt::{human_readable_seconds, pretty_size};
pub use render::{
    backup_info_json, render_keep_status, render_list_console, render_list_json,
    render_show_console, render_show_json,
};
pub use status::{RecoverabilitySummary, summarize};

use crate::layout::backup_id::effective_backup_id;
use crate::layout::backup_info::BackupInfo;

/// Barman's code would raise here (a Python exception message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// The keep annotation (`base/<ID>/annotations/keep`) as Barman reads it:
/// the first line of the body, *with* its newline if it has one
/// (`readline()`), decoded as UTF-8. Barman writes `full` or `standalone`
/// without a newline; anything else is shown as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepTarget {
    Full,
    Standalone,
    /// Any other first line (`"full\n"`, `""`, `"bogus"`...). An empty one
    /// still protects the backup from deletion but shows as no keep.
    Other(String),
}

/// The annotation body is not UTF-8 (Barman's `UnicodeDecodeError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'utf-8' codec can't decode the keep annotation")]
pub struct KeepAnnotationError;

impl KeepTarget {
    /// What Barman makes of an annotation object's body.
    pub fn from_annotation(body: &[u8]) -> Result<KeepTarget, KeepAnnotationError> {
        let end = body
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |i| i + 1);
        let line = std::str::from_utf8(&body[..end]).map_err(|_| KeepAnnotationError)?;
        Ok(match line {
            "full" => KeepTarget::Full,
            "standalone" => KeepTarget::Standalone,
            other => KeepTarget::Other(other.to_string()),
        })
    }

    /// The text Barman holds (`get_keep_target()`).
    pub fn as_str(&self) -> &str {
        match self {
            KeepTarget::Full => "full",
            KeepTarget::Standalone => "standalone",
            KeepTarget::Other(s) => s,
        }
    }

    /// The body `barman-cloud-backup-keep --target` writes (no newline).
    pub fn annotation_body(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

/// One readable backup of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The id from the key prefix `base/<ID>/`.
    pub backup_id: &'a str,
    pub info: &'a BackupInfo,
    /// The keep annotation of [`Entry::keep_lookup_id`], if any.
    pub keep: Option<&'a KeepTarget>,
}

impl<'a> Entry<'a> {
    /// The id Barman shows and looks the keep annotation up by: the key
    /// prefix, unless the file carries a `backup_id=` line (`None` if that
    /// line says `None`).
    pub fn keep_lookup_id(&self) -> Option<&'a str> {
        effective_backup_id(self.backup_id, self.info)
    }
}

/// Builds the entries of a catalogue given as (id from the key prefix,
/// `backup.info`), with `keep` giving the annotation stored under a backup
/// id (called with [`Entry::keep_lookup_id`]).
pub fn entries<'a, S: AsRef<str>>(
    catalog: &'a [(S, BackupInfo)],
    keep: impl Fn(&str) -> Option<&'a KeepTarget>,
) -> Vec<Entry<'a>> {
    catalog
        .iter()
        .map(|(id, info)| {
            let mut entry = Entry {
                backup_id: id.as_ref(),
                info,
                keep: None,
            };
            entry.keep = entry.keep_lookup_id().and_then(&keep);
            entry
        })
        .collect()
}

#[cfg(test)]
mod tests;
