//! An interrupted delete converges, and prune is a cron job's command. Seven
//! identically seeded archives (42 backups over 100 days, > 5 000 WAL
//! objects) on Ceph RGW:
//! * `barnacle prune -r "RECOVERY WINDOW OF 30 DAYS"` runs uninterrupted:
//!   one summary line whose counts are what left the bucket; a second run
//!   removes nothing and exits 0;
//! * Barman's `barman-cloud-backup-delete -r ...` leaves exactly its keys;
//! * barnacle's `delete -r ...` is SIGKILLed up to five times
//!   (`BARNACLE_RETENTION_KILLS=N`: N) at request boundaries drawn from a
//!   seed (printed; `BARNACLE_KILL_SEED` replays the draws; requests run
//!   concurrently, so a request number is not always the same request): at
//!   a random request, or right after a random
//!   `backup.info` deletion, always before the last backup's `backup.info`;
//!   then it is run again;
//! * barnacle's `delete -r ...` killed right after its *last* `backup.info`
//!   deletion, then run again; and Barman's, killed and run again alike: the
//!   two buckets must end the same;
//! * the same pair, killed right after the last but one `backup.info`
//!   deletion on timeline 1 (see below): the two buckets must end the same.
//!
//! What "converges" means here is what Barman's rule allows. Every deleted
//! backup and its archives are gone, and every key of the uninterrupted run
//! is there; but the WAL of a deleted backup is removed by that backup's own
//! pass, and a pass killed before it finished may leave WAL that no later
//! pass reaches: after the last deleted backup, and also where the next
//! backup is on a newer timeline while another backup (the FAILED one, which
//! no policy deletes) stays on the old one, which Barman then protects
//! whole. Barman's re-run leaves that WAL too: after each re-run, both tools'
//! dry runs must print nothing. The test checks that what is left over is
//! only seeded WAL older than the oldest backup the window keeps as a
//! recovery base (never a `.history` file), and prints how much; after a kill
//! right after the last `backup.info` there must be some.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use barnacle::layout::backup_info::BackupStatus;
use chrono::Local;

use crate::harness::{self, S3Kind};
use crate::retention_proxy::{KillProxy, Trigger};
use crate::retention_support::*;
use crate::support::{Archive, run};

const BACKUPS: usize = 42;
/// Kill rounds: five in CI (~70 s for the whole test); more with
/// `BARNACLE_RETENTION_KILLS=N`. Rounds stop earlier when fewer than two
/// backups are left to delete.
fn kill_rounds() -> usize {
    match std::env::var("BARNACLE_RETENTION_KILLS") {
        Ok(n) => n.parse().expect("BARNACLE_RETENTION_KILLS is a number"),
        Err(_) => 5,
    }
}

fn delete_command(archive: &Archive, endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = harness::barnacle("barman-cloud-backup-delete");
    cmd.envs(archive.s3.env())
        .args(["--endpoint-url", endpoint])
        .args(args)
        .arg(archive.url())
        .arg(&archive.server);
    cmd
}

fn prune(archive: &Archive) -> String {
    let ran = run(harness::barnacle("barnacle")
        .envs(archive.s3.env())
        .args([
            "prune",
            "--endpoint-url",
            &archive.s3.endpoint(),
            "-r",
            WINDOW,
        ])
        .arg(archive.url())
        .arg(&archive.server))
    .ok("barnacle prune");
    assert_eq!(ran.stdout.lines().count(), 1, "one summary line: {ran:#?}");
    ran.stdout
}

/// The three numbers of a prune summary line.
fn summary_counts(line: &str) -> [u64; 3] {
    let counts = line.split_once(": ").map(|(_, counts)| {
        (counts.split(", "))
            .filter_map(|part| part.split(' ').next()?.parse().ok())
            .collect::<Vec<u64>>()
    });
    match counts.as_deref() {
        Some(&[backups, wals, bytes]) => [backups, wals, bytes],
        _ => panic!("not a summary line: {line:?}"),
    }
}

fn kill_seed() -> u64 {
    match std::env::var("BARNACLE_KILL_SEED") {
        Ok(s) => s.parse().expect("BARNACLE_KILL_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64,
    }
}

fn keys(archive: &Archive) -> BTreeSet<String> {
    Bucket::new(archive).listing().into_keys().collect()
}

/// What `ours` has that `reference` has not, and the other way round.
fn difference(ours: &BTreeSet<String>, reference: &BTreeSet<String>) -> String {
    let extra: Vec<&String> = ours.difference(reference).collect();
    let missing: Vec<&String> = reference.difference(ours).collect();
    format!(
        "{} keys too many (first: {:?}), {} keys missing (first: {:?})",
        extra.len(),
        &extra[..extra.len().min(3)],
        missing.len(),
        &missing[..missing.len().min(3)]
    )
}

/// Runs the uninterrupted prune on `archive`; problems go to `problems`.
fn prune_once_then_nothing(archive: &Archive, problems: &mut Vec<String>) {
    let bucket = Bucket::new(archive);
    let before: BTreeMap<String, u64> = bucket.listing();
    let line = prune(archive);
    let after = bucket.listing();
    let removed: Vec<(&String, &u64)> = (before.iter())
        .filter(|(k, _)| !after.contains_key(*k))
        .collect();
    let infos = (removed.iter())
        .filter(|(k, _)| k.ends_with("/backup.info"))
        .count() as u64;
    let wals = (removed.iter())
        .filter(|(k, _)| k.contains("/wals/"))
        .count() as u64;
    let bytes: u64 = removed.iter().map(|(_, size)| **size).sum();
    assert!(infos >= 20 && wals >= 1000, "{line}: {infos} {wals}");
    if summary_counts(&line) != [infos, wals, bytes] {
        problems.push(format!(
            "the prune summary {line:?} does not count what left the bucket: \
             {infos} backups, {wals} WAL objects, {bytes} bytes"
        ));
    }
    let again = prune(archive);
    assert_eq!(
        again,
        format!(
            "prune {} {}: 0 backups removed, 0 WAL objects removed, 0 bytes freed\n",
            archive.url(),
            archive.server
        )
    );
    assert_eq!(bucket.listing(), after, "a second prune changed the bucket");
}

/// A dry run through the proxy: the requests a run makes before its first
/// deletion, and how many backups it still has to delete.
fn probe(archive: &Archive, proxy: &KillProxy) -> (u64, u64) {
    let (reads, ids) = probe_ids(archive, proxy);
    (reads, ids.len() as u64)
}

/// [`probe`] with the ids of the backups left to delete, in order.
fn probe_ids(archive: &Archive, proxy: &KillProxy) -> (u64, Vec<String>) {
    proxy.arm(Trigger::Never);
    let args = ["--dry-run", "-r", WINDOW];
    let probe = run(&mut delete_command(archive, &proxy.endpoint(), &args)).ok("dry run");
    let reads = proxy.disarm().requests;
    (reads, dry_run_ids(&probe.stdout))
}

/// Runs barnacle's `delete -r` through the proxy armed with `trigger`;
/// returns the request it was killed before, if it was.
fn killed_run(archive: &Archive, proxy: &KillProxy, trigger: Trigger) -> Option<u64> {
    killed(
        delete_command(archive, &proxy.endpoint(), &["-r", WINDOW]),
        proxy,
        trigger,
    )
}

/// Runs `cmd` with the proxy armed with `trigger`; returns the request it
/// was killed before, if it was.
fn killed(mut cmd: Command, proxy: &KillProxy, trigger: Trigger) -> Option<u64> {
    proxy.arm(trigger);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the delete");
    proxy.target(child.id());
    let status = child.wait().expect("wait for the delete");
    let seen = proxy.disarm();
    match seen.killed_at {
        Some(_) => assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}"),
        None => assert!(status.success(), "{trigger:?}: {status:?}"),
    }
    seen.killed_at
}

fn proxy_for(archive: &Archive) -> KillProxy {
    let upstream: u16 = (archive.s3.endpoint().rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("endpoint port");
    KillProxy::start(upstream)
}

/// Kills barnacle's delete on `archive` up to [`kill_rounds`] times at request
/// boundaries drawn from `seed`, each time before the last backup's
/// `backup.info` deletion (at most half of the backups left go per round, a
/// backup's deletion being at least two requests: its archives, its
/// `backup.info`); returns what happened, for messages.
fn killed_deletes(archive: &Archive, seed: u64) -> Vec<(Trigger, Option<u64>)> {
    let mut rng = Rng::new(seed);
    let proxy = proxy_for(archive);
    let mut kills = Vec::new();
    for round in 0..kill_rounds() {
        let (reads, left) = probe(archive, &proxy);
        if left < 2 {
            break;
        }
        let most = ((left - 1) / 2).max(1);
        let trigger = if round % 2 == 0 {
            Trigger::AtRequest(reads + rng.range(1, 2 * most))
        } else {
            Trigger::AfterInfoDeletion(rng.range(1, most))
        };
        kills.push((trigger, killed_run(archive, &proxy, trigger)));
    }
    kills
}

/// Kills the delete of barnacle (or of Barman) on `archive` right after its
/// last `backup.info` deletion, before that backup's WAL goes, then runs the
/// same tool again. Neither barnacle nor Barman finds anything more to delete
/// then (both dry runs print nothing): the WAL between the last deleted
/// backup and the oldest backup kept as a recovery base stays until the next
/// run that deletes a backup (whose WAL pass removes every unneeded WAL
/// before the next backup). Returns the keys left.
fn killed_after_last_info(archive: &Archive, barman: bool) -> BTreeSet<String> {
    killed_after_info(archive, barman, |ids| ids.len() as u64)
}

/// [`killed_after_last_info`] after the `nth(ids)`-th `backup.info`
/// deletion instead, `ids` being the backups the run deletes, in order.
fn killed_after_info(
    archive: &Archive,
    barman: bool,
    nth: impl Fn(&[String]) -> u64,
) -> BTreeSet<String> {
    let proxy = proxy_for(archive);
    // Both dry runs agree (retention_compat): barnacle's lists the backups.
    let (_, ids) = probe_ids(archive, &proxy);
    let trigger = Trigger::AfterInfoDeletion(nth(&ids));
    let tool = "barman-cloud-backup-delete";
    let killed_at = if barman {
        let mut cmd = harness::barman(tool);
        cmd.envs(archive.s3.barman_env())
            .args(["--endpoint-url", &proxy.endpoint(), "-r", WINDOW])
            .arg(archive.url())
            .arg(&archive.server);
        killed(cmd, &proxy, trigger)
    } else {
        killed_run(archive, &proxy, trigger)
    };
    assert!(
        killed_at.is_some(),
        "{trigger:?} (Barman: {barman}): the WAL deletion never came"
    );
    let mut again = if barman {
        archive.barman(tool, &["-r", WINDOW])
    } else {
        delete_command(archive, &archive.s3.endpoint(), &["-r", WINDOW])
    };
    run(&mut again).ok("delete after the kill");
    let again = same_delete(archive, &["--dry-run", "-r", WINDOW], 0);
    assert_eq!(
        again.stdout, "",
        "a delete after the re-run would delete more (Barman: {barman})"
    );
    keys(archive)
}

/// How many keys `ours` has beyond `reference` (the uninterrupted run's), and
/// what is wrong with them: `ours` must hold all of `reference`, and beyond it
/// only seeded WAL objects (never a `.history` file) older than the oldest
/// backup the window keeps as a recovery base.
fn left_over(
    ours: &BTreeSet<String>,
    reference: &BTreeSet<String>,
    seeded: &BTreeSet<String>,
    synthetic: &Synthetic,
) -> (usize, Option<String>) {
    let base = |key: &String| {
        let id = key.strip_suffix("/backup.info")?.rsplit('/').next()?;
        synthetic.backups.iter().find(|b| b.id == id)
    };
    let oldest_base = (reference.iter())
        .filter_map(base)
        .filter(|b| b.status == BackupStatus::Done && b.keep.is_none())
        .min_by(|a, b| a.id.cmp(&b.id))
        .expect("a backup kept by the window");
    let segment = |name: &str| name.get(8..24).map(str::to_string);
    let extra: Vec<&String> = ours.difference(reference).collect();
    let missing = reference.difference(ours).count();
    let needed = |key: &&String| {
        let name = key.rsplit('/').next().unwrap_or("");
        !seeded.contains(*key)
            || !key.contains("/wals/")
            || name.contains(".history")
            || segment(name) >= segment(&oldest_base.begin_wal)
    };
    let problem = (missing != 0 || extra.iter().any(needed)).then(|| {
        format!(
            "the bucket should hold the uninterrupted run's keys and, beyond them, only WAL \
             older than {} ({}): {}",
            oldest_base.begin_wal,
            oldest_base.id,
            difference(ours, reference)
        )
    });
    // Where the left-over WAL lies: hash directory → count, for the log.
    let mut dirs: BTreeMap<&str, usize> = BTreeMap::new();
    for key in &extra {
        let dir = key.rsplit('/').nth(1).unwrap_or("");
        *dirs.entry(dir).or_default() += 1;
    }
    if !dirs.is_empty() {
        eprintln!("retention kill test: left over by hash directory: {dirs:?}");
    }
    (extra.len(), problem)
}

#[test]
fn a_killed_delete_converges_like_barman_and_prune_is_idempotent() {
    let now = Local::now();
    let archives: Vec<Archive> = (0..7)
        .map(|_| Archive::new(S3Kind::CephHttp, "retention-kill"))
        .collect();
    let synthetic = std::thread::scope(|s| {
        let seeding: Vec<_> = (archives.iter())
            .map(|a| s.spawn(move || seed(a, now, BACKUPS)))
            .collect();
        let mut all = seeding.into_iter().map(|h| h.join().expect("seeding"));
        all.next().expect("four archives")
    });
    let [
        reference,
        killed,
        orphans,
        barman,
        barman_orphans,
        ours_nth,
        barman_nth,
    ] = &archives[..]
    else {
        unreachable!()
    };
    let seed = kill_seed();
    eprintln!("retention kill test: BARNACLE_KILL_SEED={seed}");
    let mut problems = Vec::new();
    // Killed after the last but one backup deleted on timeline 1, before its
    // WAL goes: the re-run's first pass deletes the last one, whose next
    // backup is on timeline 2 while the FAILED backup stays on timeline 1,
    // so that pass protects timeline 1 whole (Barman's
    // get_timelines_to_protect) and the killed pass's WAL stays, for both
    // tools.
    let nth = |ids: &[String]| {
        let on_1 = (ids.iter())
            .filter(|id| {
                (synthetic.backups.iter())
                    .any(|b| b.id == **id && b.begin_wal.starts_with("00000001"))
            })
            .count() as u64;
        on_1.saturating_sub(1).max(1)
    };
    let (kills, left_over_keys, barman_left_over, barman_ran, nth_keys) = std::thread::scope(|s| {
        // Barman's real delete on its copy, meanwhile.
        let tool = "barman-cloud-backup-delete";
        let theirs = s.spawn(|| run(&mut barman.barman(tool, &["-r", WINDOW])));
        prune_once_then_nothing(reference, &mut problems);
        let kills = killed_deletes(killed, seed);
        let barman_left_over = s.spawn(|| killed_after_last_info(barman_orphans, true));
        let barman_nth_keys = s.spawn(|| killed_after_info(barman_nth, true, nth));
        let left_over_keys = killed_after_last_info(orphans, false);
        let ours_nth_keys = killed_after_info(ours_nth, false, nth);
        (
            kills,
            left_over_keys,
            barman_left_over.join().expect("Barman's killed delete"),
            theirs.join().expect("Barman thread"),
            (
                ours_nth_keys,
                barman_nth_keys.join().expect("Barman's killed delete"),
            ),
        )
    });
    let killed_runs = kills.iter().filter(|k| k.1.is_some()).count();
    assert!(killed_runs >= 3, "too few runs were killed: {kills:?}");
    run(&mut delete_command(
        killed,
        &killed.s3.endpoint(),
        &["-r", WINDOW],
    ))
    .ok("final delete");

    // Both tools find nothing more to delete after the re-run.
    let again = same_delete(killed, &["--dry-run", "-r", WINDOW], 0);
    assert_eq!(
        again.stdout, "",
        "a delete after the re-run would delete more"
    );

    let expected = keys(reference);
    let converged = keys(killed);
    let seeded: BTreeSet<String> = synthetic.objects.iter().map(|(k, _)| k.clone()).collect();
    let (left, problem) = left_over(&converged, &expected, &seeded, &synthetic);
    eprintln!(
        "retention kill test: after the kills {kills:?} (trigger, killed before request), \
         the re-run delete left {left} WAL objects more than an uninterrupted one"
    );
    if let Some(problem) = problem {
        problems.push(format!(
            "BARNACLE_KILL_SEED={seed}: after the kills {kills:?} (trigger, killed before \
             request) and a re-run: {problem}"
        ));
    }
    assert_eq!(barman_ran.code, 0, "Barman's delete: {barman_ran:#?}");
    let theirs = keys(barman);
    if theirs != expected {
        problems.push(format!(
            "Barman's real delete leaves another bucket than barnacle's: barnacle vs Barman: {}",
            difference(&expected, &theirs)
        ));
    }
    let (left, problem) = left_over(&left_over_keys, &expected, &seeded, &synthetic);
    eprintln!(
        "retention kill test: {left} WAL objects left over by the delete killed after its last backup.info"
    );
    if left == 0 {
        problems.push(
            "killed after its last backup.info, the delete left no WAL: the kill came too late"
                .into(),
        );
    }
    if let Some(problem) = problem {
        problems.push(format!(
            "killed right after its last backup.info deletion and re-run: {problem}"
        ));
    }
    let (ours_nth_keys, barman_nth_keys) = nth_keys;
    let (left, problem) = left_over(&ours_nth_keys, &expected, &seeded, &synthetic);
    if let Some(problem) = problem {
        problems.push(format!(
            "killed right after the last but one backup.info deletion on timeline 1 and re-run: {problem}"
        ));
    }
    if left == 0 {
        problems.push(
            "killed right after the last but one backup.info deletion on timeline 1, the delete \
             left no WAL"
                .into(),
        );
    }
    eprintln!(
        "retention kill test: killed after the last but one backup.info deletion on timeline \
         1 and re-run, barnacle left {left} WAL objects more than an uninterrupted run"
    );
    if ours_nth_keys != barman_nth_keys {
        problems.push(format!(
            "killed right after the last but one backup.info deletion on timeline 1 and re-run, \
             barnacle and Barman leave different buckets: barnacle vs Barman: {}",
            difference(&ours_nth_keys, &barman_nth_keys)
        ));
    }
    if left_over_keys != barman_left_over {
        problems.push(format!(
            "killed right after the last backup.info deletion and re-run, barnacle and Barman \
             leave different buckets: barnacle vs Barman: {}",
            difference(&left_over_keys, &barman_left_over)
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
