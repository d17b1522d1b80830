//! `delete` (barman-cloud-backup-delete) and `prune` (the cron job: a policy
//! run printing one summary line).

use std::collections::HashMap;

use super::{Report, connectivity_test, open};
use crate::catalog::load::load;
use crate::cli::{DeleteArgs, PruneArgs};
use crate::error::Error;
use crate::layout::ServerPrefix;
use crate::retention::{
    ExecuteError, Inventory, Mode, Plan, Removed, Request, execute, parse_policy, plan,
    render_dry_run,
};
use crate::storage::Store;

/// Reads the catalogue and the WAL listing, with every object's size.
async fn inventory(
    store: &Store,
    prefix: &ServerPrefix,
    server: &str,
) -> Result<(Inventory, HashMap<String, u64>), Error> {
    let catalog = load(store, prefix).await?;
    let (wals_root, base_root) = (prefix.wals_root(), prefix.base_root());
    let (wals, base) = tokio::join!(store.list(&wals_root), store.list(&base_root));
    let (wals, base) = (wals?, base?);
    let sizes: HashMap<String, u64> = wals
        .iter()
        .chain(base.iter())
        .map(|o| (o.key.clone(), o.size))
        .collect();
    let wal_keys = wals.into_iter().map(|o| o.key).collect();
    Ok((
        Inventory::new(prefix.clone(), server, catalog, wal_keys),
        sizes,
    ))
}

/// Logs what Barman logs for a plan.
fn log_plan(plan: &Plan) {
    for (id, status) in &plan.report {
        tracing::info!(backup_id = %id, status = status.as_str(), "retention status");
    }
    for line in plan.barman_log() {
        match line.split_once(": ") {
            Some(("ERROR", msg)) => tracing::error!("{msg}"),
            Some(("WARNING", msg)) => tracing::warn!("{msg}"),
            _ => tracing::info!("{line}"),
        }
    }
}

/// Plans and runs one request; the report's exit code follows Barman.
async fn run_request(
    store: &Store,
    prefix: &ServerPrefix,
    server: &str,
    request: Result<Request, Error>,
    dry_run: bool,
    batch_size: usize,
) -> Result<(Report, Removed), Error> {
    let (inventory, sizes) = inventory(store, prefix, server).await?;
    let request = request?;
    let mode = if dry_run { Mode::DryRun } else { Mode::Execute };
    let planned = match plan(&inventory, &request, mode, &chrono::Local::now()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{}", e.barman_log());
            return Ok((Report::code(e.exit_code() as u8), Removed::default()));
        }
    };
    log_plan(&planned);
    if dry_run {
        return Ok((
            Report {
                code: planned.exit_code() as u8,
                stdout: render_dry_run(&planned),
            },
            Removed::default(),
        ));
    }
    let removed = match execute(store, &planned, batch_size, &sizes).await {
        Ok(removed) => removed,
        // Barman: "Could not delete backup …", exit 1.
        Err(e @ ExecuteError::Backup { .. }) => {
            tracing::error!("{e}");
            return Ok((Report::code(1), Removed::default()));
        }
        Err(ExecuteError::Storage(e)) => return Err(e.into()),
    };
    Ok((Report::code(planned.exit_code() as u8), removed))
}

fn policy_request(policy: &str, minimum_redundancy: u64) -> Result<Request, Error> {
    let policy = parse_policy(policy).map_err(|e| Error::Usage(e.barman_log()))?;
    Ok(Request::Policy {
        policy,
        minimum_redundancy,
    })
}

pub(super) async fn delete(args: &DeleteArgs) -> Result<Report, Error> {
    let (store, config) = open(&args.common, &args.source_url).await?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    if args.common.test {
        return connectivity_test(&store).await;
    }
    if args.check_object_lock {
        tracing::warn!(
            "--check-object-lock: barnacle relies on the store refusing to delete locked objects"
        );
    }
    let request = match (&args.backup_id, &args.retention_policy) {
        (Some(id), _) => Ok(Request::Backup {
            identifier: id.clone(),
            minimum_redundancy: args.minimum_redundancy,
        }),
        (None, Some(policy)) => policy_request(policy, args.minimum_redundancy),
        (None, None) => Err(Error::Usage(
            "one of -b/--backup-id or -r/--retention-policy is required".into(),
        )),
    };
    let batch = args.batch_size.unwrap_or(1000).min(1000) as usize;
    let (report, removed) = run_request(
        &store,
        &prefix,
        &args.server_name,
        request,
        args.dry_run,
        batch,
    )
    .await?;
    if !args.dry_run && report.code == 0 {
        tracing::info!(
            backups = removed.backups,
            wal_objects = removed.wal_objects,
            bytes = removed.bytes,
            "delete completed"
        );
    }
    Ok(report)
}

/// The cron job: one summary line on stdout; the exit code says whether the
/// run did its work (0), or not (1: refused, 3: bad policy, 4: store error).
pub(super) async fn prune(args: &PruneArgs) -> Result<Report, Error> {
    let (store, config) = open(&args.common, &args.source_url).await?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let batch = args.batch_size.unwrap_or(1000).min(1000) as usize;
    let request = policy_request(&args.retention_policy, args.minimum_redundancy);
    let (mut report, removed) = run_request(
        &store,
        &prefix,
        &args.server_name,
        request,
        args.dry_run,
        batch,
    )
    .await?;
    if args.dry_run {
        return Ok(report);
    }
    report.stdout = format!(
        "prune {} {}: {} backups removed, {} WAL objects removed, {} bytes freed{}\n",
        args.source_url,
        args.server_name,
        removed.backups,
        removed.wal_objects,
        removed.bytes,
        if report.code == 0 {
            ""
        } else {
            " (incomplete: see the errors above)"
        }
    );
    Ok(report)
}

/// The retention run the sidecar schedules: a policy applied like `prune`.
pub(super) async fn scheduled(
    store: &Store,
    prefix: &ServerPrefix,
    server: &str,
    policy: &str,
    minimum_redundancy: u64,
) -> Result<(u64, u64), String> {
    let request = policy_request(policy, minimum_redundancy);
    match run_request(store, prefix, server, request, false, 1000).await {
        Ok((report, removed)) if report.code == 0 => Ok((removed.backups, removed.wal_objects)),
        Ok((report, _)) => Err(format!(
            "retention refused or incomplete (exit code {})",
            report.code
        )),
        Err(e) => Err(e.to_string()),
    }
}
