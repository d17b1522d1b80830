//! A deliberately naive oracle, written from spec §7 rather than from the
//! planner: which backups a policy deletes, and which WAL objects end up
//! deleted (the union of whole prefixes and single keys) when a list of
//! backups is deleted in order. Quadratic on purpose; small inputs only.
//!
//! One correction to the spec's text, verified against Barman: the
//! protected timelines include the deleted backup's own (see the
//! `timeline_identity` fixture).

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, TimeDelta};

use super::{Policy, RecoveryWindow};
use crate::catalog::KeepTarget;
use crate::layout::backup_info::{BackupInfo, BackupStatus};

/// One backup as the oracle sees it.
#[derive(Debug, Clone)]
pub(super) struct Backup {
    pub id: String,
    pub info: BackupInfo,
    pub keep: Option<KeepTarget>,
}

impl Backup {
    fn done(&self) -> bool {
        self.info.status == Some(BackupStatus::Done)
    }

    fn copy_done(&self) -> bool {
        matches!(
            self.info.status,
            Some(BackupStatus::Done | BackupStatus::WaitingForWals)
        )
    }

    /// A keep that protects from a policy: any non-empty annotation.
    fn kept(&self) -> bool {
        self.keep.as_ref().is_some_and(|k| !k.as_str().is_empty())
    }

    fn standalone(&self) -> bool {
        self.keep == Some(KeepTarget::Standalone)
    }
}

/// "Only status exactly OBSOLETE is deleted": the ids a policy deletes.
/// `backups` sorted by id; `now` in a fixed offset (no DST).
pub(super) fn obsolete(
    policy: &Policy,
    minimum: u64,
    backups: &[Backup],
    now: DateTime<FixedOffset>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let newest_first = backups.iter().rev().filter(|b| b.done());
    match policy {
        Policy::Redundancy(n) => {
            let n = (*n).max(minimum);
            for (position, b) in newest_first.enumerate() {
                if !b.kept() && position as u64 >= n {
                    out.insert(b.id.clone());
                }
            }
        }
        Policy::RecoveryWindow(w) => {
            let point = now - TimeDelta::days(window_days(w));
            let mut found = false;
            let mut valid = 0u64;
            for b in newest_first {
                if !found {
                    valid += 1;
                    found = b.info.end_time.is_some_and(|t| t < point);
                } else if valid < minimum {
                    valid += 1;
                } else if !b.kept() {
                    out.insert(b.id.clone());
                }
            }
        }
    }
    out
}

fn window_days(w: &RecoveryWindow) -> i64 {
    let per = match w.unit {
        super::WindowUnit::Days => 1,
        super::WindowUnit::Weeks => 7,
        super::WindowUnit::Months => 31,
    };
    w.value as i64 * per
}

/// The WAL objects (from `wal_keys`) gone after deleting `order` one by one;
/// `policy` is false for `-b` (a standalone predecessor then blocks).
pub(super) fn wal_deletions(
    wals_root: &str,
    backups: &[Backup],
    wal_keys: &[String],
    order: &[String],
    policy: bool,
) -> BTreeSet<String> {
    let mut catalogue: Vec<&Backup> = backups.iter().collect();
    let mut gone = BTreeSet::new();
    for id in order {
        let Some(pos) = catalogue.iter().position(|b| &b.id == id) else {
            continue;
        };
        let deleted = catalogue[pos];
        let mut ranges: Vec<(&str, &str)> = Vec::new();
        let mut remove = true;
        for previous in catalogue[..pos].iter().rev().filter(|b| b.copy_done()) {
            if previous.standalone() && policy {
                let begin = previous.info.begin_wal.as_deref().unwrap_or("");
                ranges.push((begin, previous.info.end_wal.as_deref().unwrap_or("")));
            } else {
                remove = false;
                break;
            }
        }
        if remove {
            let until = catalogue[pos + 1..]
                .iter()
                .find(|b| b.copy_done())
                .copied()
                .unwrap_or(deleted);
            let until_begin = until.info.begin_wal.clone().unwrap_or_default();
            let protected: BTreeSet<i64> = catalogue
                .iter()
                .filter_map(|b| b.info.timeline)
                .filter(|t| Some(*t) != until.info.timeline)
                .collect();
            let now_gone: Vec<String> = wal_keys
                .iter()
                .filter(|k| !gone.contains(*k))
                .filter(|k| goes(k, wals_root, &protected, &ranges, &until_begin))
                .cloned()
                .collect();
            gone.extend(now_gone);
        }
        catalogue.remove(pos);
    }
    gone
}

/// Spec §7's fast path and per-WAL rule for one key.
fn goes(
    key: &str,
    root: &str,
    protected: &BTreeSet<i64>,
    ranges: &[(&str, &str)],
    until: &str,
) -> bool {
    let rest = &key[root.len()..];
    let hex = |s: &str| i64::from_str_radix(s, 16).unwrap_or(-1);
    if let Some((dir, _)) = rest.split_once('/') {
        let (tli, log) = (hex(&dir[..8]), hex(&dir[8..16]));
        let in_box = ranges.iter().any(|(b, e)| {
            (hex(&b[..8])..=hex(&e[..8])).contains(&tli)
                && (hex(&b[8..16])..=hex(&e[8..16])).contains(&log)
        });
        if !protected.contains(&tli)
            && !in_box
            && tli == hex(&until[..8])
            && log < hex(&until[8..16])
        {
            return true;
        }
    }
    let base = rest.rsplit('/').next().unwrap_or(rest);
    let name = [".gz", ".bz2", ".xz", ".snappy", ".zst", ".lz4"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    if name.ends_with(".history") || protected.contains(&hex(&name[..8])) {
        return false;
    }
    let range_name = if name.ends_with(".backup") {
        &name[..24]
    } else {
        name
    };
    if ranges
        .iter()
        .any(|(b, e)| range_name >= *b && range_name <= *e)
    {
        return false;
    }
    name < until
}
