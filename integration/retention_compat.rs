//! Retention decisions against Barman's own on real buckets: an archive of
//! 42 backups over 100 simulated days and > 5 000 WAL objects (three
//! timelines, `.history`, `.partial` and `.backup` files, keep:full and
//! keep:standalone, a FAILED and a STARTED backup), on SeaweedFS and on Ceph
//! RGW. For each policy, minimum redundancy and `-b` request, barnacle's
//! `--dry-run` prints exactly what Barman 3.19's prints, with the same exit
//! code; the backups both delete are also checked against the policy's rule.

use chrono::{Local, TimeDelta};

use barnacle::layout::backup_info::BackupStatus;

use crate::harness::S3Kind;
use crate::retention_support::*;
use crate::support::Archive;

/// Backups of the synthetic archive.
const BACKUPS: usize = 42;

fn dry_runs_agree(kind: S3Kind) {
    let archive = Archive::new(kind, "retention-dry");
    let now = Local::now();
    let synthetic = seed(&archive, now, BACKUPS);
    assert!(synthetic.wal_objects >= 5000, "{}", synthetic.wal_objects);
    let done: Vec<&Synth> = synthetic
        .backups
        .iter()
        .filter(|b| b.status == BackupStatus::Done)
        .collect();
    let unkept = |list: &[&Synth]| -> Vec<String> {
        (list.iter())
            .filter(|b| b.keep.is_none())
            .map(|b| b.id.clone())
            .collect()
    };
    // REDUNDANCY 3: the three newest DONE backups stay, and the kept ones.
    let redundancy = unkept(&done[..done.len() - 3]);
    // The window: the newest backup ending before its start stays too.
    let point = now - TimeDelta::days(30);
    let crossing = done
        .iter()
        .rposition(|b| b.end_time.expect("DONE") < point)
        .expect("a backup older than the window");
    let window = unkept(&done[..crossing]);
    assert!(window.len() >= 20, "{window:?}");

    // -b: the oldest (its WAL goes), a FAILED and a STARTED one, one by name,
    // the one after the standalone backup, and two refusals (a kept backup;
    // a minimum redundancy of all 41 non-STARTED backups).
    let standalone = synthetic.kept("standalone");
    let after = synthetic
        .backups
        .iter()
        .position(|b| b.id == standalone.id)
        .expect("standalone")
        + 1;
    let oldest = synthetic.backups[0].id.as_str();
    let named = synthetic.named().name.clone().expect("named");
    let mut cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["--dry-run", "-r", "REDUNDANCY 3"], 0),
        (vec!["--dry-run", "-r", WINDOW], 0),
        (vec!["--dry-run", "-r", WINDOW, "-m", "20"], 0),
        (vec!["--dry-run", "-r", WINDOW, "-m", "45"], 0),
    ];
    for (id, code) in [
        (oldest, 0),
        (synthetic.failed().id.as_str(), 0),
        (synthetic.started().id.as_str(), 0),
        (named.as_str(), 0),
        (synthetic.backups[after].id.as_str(), 0),
        (synthetic.kept("full").id.as_str(), 1),
    ] {
        cases.push((vec!["--dry-run", "-b", id], code));
    }
    cases.push((vec!["--dry-run", "-b", oldest, "-m", "41"], 1));
    let runs = same_deletes(&archive, &cases, 4);

    assert_eq!(dry_run_ids(&runs[0].stdout), redundancy, "REDUNDANCY 3");
    assert_eq!(dry_run_ids(&runs[1].stdout), window, "{WINDOW}");
    assert!(
        runs[1]
            .stdout
            .contains("Skipping deletion of all objects under prefix"),
        "no hash directory deleted whole:\n{}",
        runs[1].stdout
    );
    let some = dry_run_ids(&runs[2].stdout);
    assert!(
        !some.is_empty() && some.len() < window.len(),
        "-m 20: {some:?}"
    );
    assert_eq!(runs[3].stdout, "", "-m 45 deletes nothing");
    for run in &runs[4..9] {
        assert_eq!(dry_run_ids(&run.stdout).len(), 1, "{}", run.stdout);
    }
    assert!(
        runs[4].stdout.lines().count() >= 2,
        "the oldest backup's WAL goes with it: {}",
        runs[4].stdout
    );
}

#[test]
fn dry_run_prints_what_barman_prints_on_seaweedfs() {
    dry_runs_agree(S3Kind::SeaweedHttp);
}

#[test]
fn dry_run_prints_what_barman_prints_on_ceph_rgw() {
    dry_runs_agree(S3Kind::CephHttp);
}
