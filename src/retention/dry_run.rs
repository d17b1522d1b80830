//! What `barman-cloud-backup-delete --dry-run` prints on stdout
//! (`_delete_backup` and `_remove_wals_for_backup` with `dry_run=True`).
//!
//! Per deleted backup, in this order: for a snapshot backup "Skipping
//! deletion of snapshots due to --dry-run option" and "Skipping deletion of
//! <P/base/ID/backup_label> due to --dry-run option"; then one line for the
//! whole backup, `Skipping deletion of objects [<files>, <backup.info>] due
//! to --dry-run option` (Python's `repr` of the list: no batching in a dry
//! run); one line per WAL prefix, `Skipping deletion of all objects under
//! prefix <prefix> due to --dry-run option`; and one line with every WAL key,
//! sorted, if there is any. Warnings and errors go to stderr (see
//! [`Plan::barman_log`](super::Plan::barman_log)), not here.

use super::outcome::{Plan, py_list};

/// The stdout of `barman-cloud-backup-delete --dry-run` for `plan` (which
/// should have been made with [`Mode::DryRun`](super::Mode::DryRun): a real
/// run lists a WAL prefix once, a dry run once per deleted backup).
pub fn render_dry_run(plan: &Plan) -> String {
    let mut out = String::new();
    let snapshot = |label: &Option<String>, out: &mut String| {
        if let Some(label) = label {
            out.push_str("Skipping deletion of snapshots due to --dry-run option\n");
            out.push_str(&format!(
                "Skipping deletion of {label} due to --dry-run option\n"
            ));
        }
    };
    for d in &plan.deletions {
        snapshot(&d.snapshot_backup_label, &mut out);
        out.push_str(&format!(
            "Skipping deletion of objects {} due to --dry-run option\n",
            py_list(&d.objects())
        ));
        for prefix in &d.wal_prefixes {
            out.push_str(&format!(
                "Skipping deletion of all objects under prefix {prefix} due to --dry-run option\n"
            ));
        }
        if !d.wal_keys.is_empty() {
            out.push_str(&format!(
                "Skipping deletion of objects {} due to --dry-run option\n",
                py_list(&d.wal_keys)
            ));
        }
    }
    if let Some(abort) = &plan.abort {
        snapshot(&abort.snapshot_backup_label, &mut out);
    }
    out
}
