//! Retention: the pure planner behind `barman-cloud-backup-delete` (spec §7).
//! No I/O here: the caller lists `P/base/` (the [`Catalog`]) and `P/wals/`,
//! and executes the [`Plan`] (or prints [`render_dry_run`]).
//!
//! | module | owns | mirrors (Barman 3.19.1) |
//! |---|---|---|
//! | [`policy`](parse_policy) | `REDUNDANCY N`, `RECOVERY WINDOW OF N UNIT`, CloudNativePG's `30d` | `RetentionPolicyFactory.create` |
//! | [`report`](retention_report) | VALID / OBSOLETE / OBSOLETE* / KEEP:FULL / KEEP:STANDALONE / `-` | `*RetentionPolicy._backup_report` |
//! | `files` | the archives of one backup | `_get_files_for_backup`, `get_backup_files` |
//! | `wal` | WAL names, the listing cache, prefix fast path, per-WAL rule | `_remove_wals_for_backup`, `get_wal_paths`, `xlog` |
//! | `outcome` | [`Plan`], [`Request`], warnings, crashes, refusals and their texts | the log and exit-code lines |
//! | [`planner`](plan) | `-b` / `-r` flows, refusals, neighbours, protected timelines | `cloud_backup_delete.main`, `_delete_backup`, `BackupManager.should_remove_wals` |
//! | [`dry_run`](render_dry_run) | the `--dry-run` stdout | the `print` calls |
//!
//! Use: [`check_catalog`] once the catalogue is loaded, then
//! [`parse_policy`] (Barman reports an unreadable catalogue, exit 1, before
//! a bad policy, exit 3), then [`plan`]. [`Inventory::apply`] applies a plan
//! to the listing, so "plan, apply, plan again" deletes nothing.
//!
//! Barman's surprises, all kept (each module says more):
//! 1. The deleted backup's own timeline stays protected: Barman compares a
//!    freshly loaded `BackupInfo` with its cached ones by identity, so
//!    "every other backup" includes it. Deleting the last backup of timeline
//!    1 when the next one is on timeline 2 keeps all of timeline 1's WALs.
//!    (Spec §7 states the intended rule, not this one.)
//! 2. WAL names are compared with the next backup's `begin_wal` as plain
//!    strings: lower timelines go too, lower-case names mostly stay, the next
//!    backup's own `.backup` file and the `.partial` of its `begin_wal` stay,
//!    but the `.partial` of a standalone backup's `end_wal` is not protected.
//! 3. In a real run the WAL cache is filled after the first prefix
//!    deletions; WALs under prefixes deleted by later passes stay cached and
//!    are deleted a second time, by key, by a later pass. A dry run deletes
//!    nothing, so it prints the same prefixes again for every backup.
//! 4. `X` and `X.gz` in the archive: only the later listed (`X.gz`) is ever
//!    deleted; likewise only the last of `data.tar` / `data.tar.gz`.
//! 5. Kept backups use up REDUNDANCY slots; `REDUNDANCY 0` deletes every DONE
//!    backup without keep, newest included; an empty keep annotation is no
//!    keep for a policy but blocks `-b`; `-m` counts FAILED backups for `-b`.
//! 6. `-b` deletes FAILED and STARTED backups too; one without `begin_wal`
//!    that is the only one on the archive deletes its files, then crashes.
//! 7. Crashes (exit 4) after partial work: an extra tar part with an unknown
//!    extension, `children_backup_ids` set, a DONE backup without `end_time`,
//!    a window before year 1, `-r main`, a keep annotation that is not UTF-8.
//! 8. A history file is never deleted by name, but one misplaced inside a
//!    hash directory goes with that directory.
//! 9. With a bucket path ending in `/` (`s3://b/path/`), Barman's keep
//!    annotations live at `path//SERVER/base/ID/annotations/keep` (its
//!    `AnnotationManagerCloud` adds a `/` to the path), outside the backups'
//!    `path/SERVER/base/`; an annotation under the latter is ignored. The
//!    planner takes `catalog.keep` as given: a loader must look there (the
//!    `trailing_slash_keep` fixture).
//!
//! Deliberate limits: WAL hex digits are ASCII (Python's `\d` would take
//! other Unicode digits); a `backup_id=` line that disagrees with its key is
//! refused ([`PlanError::BackupIdMismatch`]); the message for a keep that is
//! not UTF-8 does not quote the byte; dateutil's `tzlocal` applies today's
//! DST rules to any date, [`plan`]'s zone its own.

mod dry_run;
mod execute;
mod files;
mod outcome;
mod planner;
mod policy;
mod report;
mod wal;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};

pub use dry_run::render_dry_run;
pub use execute::{ExecuteError, Removed, execute};
pub use outcome::{Abort, BackupDeletion, Crash, Mode, Plan, PlanError, Request, Warning};
pub use planner::{check_catalog, plan, retention_report};
pub use policy::{Policy, PolicyError, RecoveryWindow, WindowUnit, cnpg_to_barman, parse_policy};
pub use report::{Report, RetentionStatus, point_of_recoverability};

use crate::catalog::load::Catalog;
use crate::layout::ServerPrefix;

/// What the planner reads: one server's catalogue and WAL listing.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub prefix: ServerPrefix,
    /// The server name as given on the command line (for messages).
    pub server_name: String,
    /// `backups` sorted by id; `keep`: the annotations as Barman finds them
    /// (surprise 9); `keys`: every key under `P/base/`.
    pub catalog: Catalog,
    /// Every key under `P/wals/`, any order (100 000+ is fine).
    pub wal_keys: Vec<String>,
    /// Backups whose keep annotation exists but is not UTF-8 (the catalogue
    /// loader drops those from `catalog.keep`; Barman crashes reading them).
    /// [`Inventory::new`] fills it from `catalog.keys`.
    pub undecodable_keep: BTreeSet<String>,
}

impl Inventory {
    pub fn new(
        prefix: ServerPrefix,
        server_name: impl Into<String>,
        catalog: Catalog,
        wal_keys: Vec<String>,
    ) -> Self {
        let base = prefix.base_root();
        let undecodable_keep = catalog
            .keys
            .iter()
            .filter_map(|k| k.strip_prefix(&base)?.strip_suffix("/annotations/keep"))
            .filter(|id| !id.contains('/') && !catalog.keep.contains_key(*id))
            .map(str::to_string)
            .collect();
        Inventory {
            prefix,
            server_name: server_name.into(),
            catalog,
            wal_keys,
            undecodable_keep,
        }
    }

    /// Removes what `plan` deletes (also what was deleted before an abort):
    /// the objects, the WAL keys and everything under the WAL prefixes; a
    /// backup whose `backup.info` goes leaves the catalogue. Keep annotations
    /// and stray files stay, as in the bucket.
    pub fn apply(&mut self, plan: &Plan) {
        let mut gone: HashSet<&str> = HashSet::new();
        let mut prefixes: Vec<&str> = Vec::new();
        for d in &plan.deletions {
            gone.extend(d.objects());
            gone.extend(d.snapshot_backup_label.as_deref());
            gone.extend(d.wal_keys.iter().map(String::as_str));
            prefixes.extend(d.wal_prefixes.iter().map(String::as_str));
        }
        if let Some(abort) = &plan.abort {
            gone.extend(abort.snapshot_backup_label.as_deref());
        }
        let deleted_infos: HashSet<String> = plan
            .deletions
            .iter()
            .map(|d| self.prefix.backup_info_key(&d.backup_id))
            .collect();
        self.catalog
            .backups
            .retain(|(id, _)| !deleted_infos.contains(&self.prefix.backup_info_key(id)));
        self.catalog.keys.retain(|k| !gone.contains(k.as_str()));
        let root = self.prefix.wals_root();
        let prefixes: HashSet<&str> = prefixes.into_iter().collect();
        self.wal_keys.retain(|k| {
            let dir = k
                .get(root.len()..)
                .filter(|_| k.starts_with(&root))
                .and_then(|rest| rest.find('/'))
                .map(|i| &k[..root.len() + i + 1]);
            !gone.contains(k.as_str()) && dir.is_none_or(|d| !prefixes.contains(d))
        });
    }
}
