//! An interrupted delete converges, and prune is a cron job's command. Seven
//! identically seeded archives (42 backups over 100 days, > 5 000 WAL
//! objects) on Ceph RGW:
//! * `barnacle prune -r "RECOVERY WINDOW OF 30 DAYS"` runs uninterrupted:
//!   one summary line whose counts are what left the bucket; a second run
//!   removes nothing and exits 0. Its bucket is the reference;
//! * Barman's `barman-cloud-backup-delete -r ...` leaves exactly its keys;
//! * barnacle's `delete -r ...` (batches of 10 keys, so that a backup's WAL
//!   pass takes many requests) is SIGKILLed up to five times
//!   (`BARNACLE_RETENTION_KILLS=N`: N) at request boundaries drawn from a
//!   seed (printed; `BARNACLE_KILL_SEED` replays the draws; requests run
//!   concurrently, so a request number is not always the same request): at
//!   a random request, right after a random `backup.info` deletion, or in
//!   the middle of a random backup's WAL pass; then it is run again and must
//!   leave exactly the reference's keys;
//! * barnacle's `delete -r ...` killed in the middle of the WAL pass of the
//!   last backup it deletes, and of the last but one backup on timeline 1,
//!   then run again: exactly the reference's keys;
//! * Barman's, killed at its own weak point for those two backups (right
//!   after their `backup.info` deletion, before their WAL pass), then run
//!   again: it leaves WAL that no later run removes (the backup is gone from
//!   the catalogue, so its pass is never planned again; after the last
//!   deleted backup no other pass reaches that WAL, and where the next
//!   backup is on a newer timeline while the FAILED backup, which no policy
//!   deletes, stays on the old one, the next pass protects timeline 1 whole).
//!   The test checks that this is only seeded WAL older than the oldest
//!   backup the window keeps (never a `.history` file) and that there is
//!   some: the kill points are the ones where Barman's order falls short.
//!   barnacle deletes a backup's WAL before its `backup.info`
//!   (`retention::execute`), so its re-run redoes the pass.

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

/// Runs barnacle's `delete -r` (DeleteObjects of 10 keys) through the proxy
/// armed with `trigger`;
/// returns the request it was killed before, if it was.
fn killed_run(archive: &Archive, proxy: &KillProxy, trigger: Trigger) -> Option<u64> {
    killed(
        delete_command(
            archive,
            &proxy.endpoint(),
            &["--batch-size", "10", "-r", WINDOW],
        ),
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
/// `backup.info`), or in the middle of a backup's WAL pass; returns what
/// happened, for messages.
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
        let trigger = match round % 3 {
            0 => Trigger::AtRequest(reads + rng.range(1, 2 * most)),
            1 => Trigger::AfterInfoDeletion(rng.range(1, most)),
            _ => Trigger::InWal {
                after_infos: rng.range(1, most) - 1,
                nth: rng.range(2, 3),
            },
        };
        kills.push((trigger, killed_run(archive, &proxy, trigger)));
    }
    kills
}

/// Kills Barman's delete on `archive` right after its `nth(ids)`-th
/// `backup.info` deletion (`ids`: the backups the run deletes, in order),
/// before that backup's WAL pass, then runs it again. Neither tool finds
/// anything more to delete then (both dry runs print nothing), though WAL the
/// killed pass would have deleted may be left. Returns the keys left.
fn barman_killed_after_info(archive: &Archive, nth: impl Fn(&[String]) -> u64) -> BTreeSet<String> {
    let proxy = proxy_for(archive);
    // Both dry runs agree (retention_compat): barnacle's lists the backups.
    let (_, ids) = probe_ids(archive, &proxy);
    let trigger = Trigger::AfterInfoDeletion(nth(&ids));
    let tool = "barman-cloud-backup-delete";
    let mut cmd = harness::barman(tool);
    cmd.envs(archive.s3.barman_env())
        .args(["--endpoint-url", &proxy.endpoint(), "-r", WINDOW])
        .arg(archive.url())
        .arg(&archive.server);
    let killed_at = killed(cmd, &proxy, trigger);
    assert!(
        killed_at.is_some(),
        "{trigger:?}: Barman's WAL deletion never came"
    );
    run(&mut archive.barman(tool, &["-r", WINDOW])).ok("Barman's delete after the kill");
    settled(archive);
    keys(archive)
}

/// Kills barnacle's delete on `archive` in the middle of the WAL pass of the
/// `nth(ids)`-th backup it deletes (after its first WAL request), checks
/// that the backup is still listed, then runs it again. Returns the keys
/// left.
fn barnacle_killed_in_pass(archive: &Archive, nth: impl Fn(&[String]) -> u64) -> BTreeSet<String> {
    let proxy = proxy_for(archive);
    let (_, ids) = probe_ids(archive, &proxy);
    let n = nth(&ids);
    let trigger = Trigger::InWal {
        after_infos: n - 1,
        nth: 2,
    };
    let killed_at = killed_run(archive, &proxy, trigger);
    assert!(killed_at.is_some(), "{trigger:?}: the WAL pass never came");
    let id = &ids[n as usize - 1];
    assert!(
        (keys(archive).iter()).any(|k| k.ends_with(&format!("/{id}/backup.info"))),
        "killed in its WAL pass, backup {id} is no longer listed"
    );
    run(&mut delete_command(
        archive,
        &archive.s3.endpoint(),
        &["-r", WINDOW],
    ))
    .ok("delete after the kill");
    settled(archive);
    keys(archive)
}

/// Neither tool finds anything more to delete on `archive`.
fn settled(archive: &Archive) {
    let again = same_delete(archive, &["--dry-run", "-r", WINDOW], 0);
    assert_eq!(
        again.stdout, "",
        "a delete after the re-run would delete more"
    );
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
fn a_killed_delete_converges_to_the_uninterrupted_state_and_prune_is_idempotent() {
    let now = Local::now();
    let archives: Vec<Archive> = (0..7)
        .map(|_| Archive::new(S3Kind::CephHttp, "retention-kill"))
        .collect();
    let synthetic = std::thread::scope(|s| {
        let seeding: Vec<_> = (archives.iter())
            .map(|a| s.spawn(move || seed(a, now, BACKUPS)))
            .collect();
        let mut all = seeding.into_iter().map(|h| h.join().expect("seeding"));
        all.next().expect("seven archives")
    });
    let [
        reference,
        killed,
        ours_last,
        ours_nth,
        barman,
        barman_last,
        barman_nth,
    ] = &archives[..]
    else {
        unreachable!()
    };
    let seed = kill_seed();
    eprintln!("retention kill test: BARNACLE_KILL_SEED={seed}");
    let mut problems = Vec::new();
    let last = |ids: &[String]| ids.len() as u64;
    // The last but one backup deleted on timeline 1: the pass after it
    // deletes the last one, whose next backup is on timeline 2 while the
    // FAILED backup stays on timeline 1, so that pass protects timeline 1
    // whole (Barman's get_timelines_to_protect) and never reaches the WAL of
    // the pass before.
    let nth = |ids: &[String]| {
        let on_1 = (ids.iter())
            .filter(|id| {
                (synthetic.backups.iter())
                    .any(|b| b.id == **id && b.begin_wal.starts_with("00000001"))
            })
            .count() as u64;
        on_1.saturating_sub(1).max(1)
    };
    let (kills, ours, theirs, barman_ran) = std::thread::scope(|s| {
        // Barman's real delete on its copy, meanwhile.
        let tool = "barman-cloud-backup-delete";
        let barman_ran = s.spawn(|| run(&mut barman.barman(tool, &["-r", WINDOW])));
        let barman_last_keys = s.spawn(|| barman_killed_after_info(barman_last, last));
        let barman_nth_keys = s.spawn(|| barman_killed_after_info(barman_nth, nth));
        prune_once_then_nothing(reference, &mut problems);
        let kills = killed_deletes(killed, seed);
        let ours = [
            barnacle_killed_in_pass(ours_last, last),
            barnacle_killed_in_pass(ours_nth, nth),
        ];
        let theirs = [
            barman_last_keys.join().expect("Barman's killed delete"),
            barman_nth_keys.join().expect("Barman's killed delete"),
        ];
        (
            kills,
            ours,
            theirs,
            barman_ran.join().expect("Barman thread"),
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
    settled(killed);

    let expected = keys(reference);
    let converged = keys(killed);
    eprintln!(
        "retention kill test: after the kills {kills:?} (trigger, killed before request) and a \
         re-run, {} keys differ from the uninterrupted run's",
        converged.symmetric_difference(&expected).count()
    );
    if converged != expected {
        problems.push(format!(
            "BARNACLE_KILL_SEED={seed}: after the kills {kills:?} (trigger, killed before \
             request) and a re-run, barnacle vs the uninterrupted run: {}",
            difference(&converged, &expected)
        ));
    }
    assert_eq!(barman_ran.code, 0, "Barman's delete: {barman_ran:#?}");
    let barman_keys = keys(barman);
    if barman_keys != expected {
        problems.push(format!(
            "Barman's real delete leaves another bucket than barnacle's: barnacle vs Barman: {}",
            difference(&expected, &barman_keys)
        ));
    }
    let seeded: BTreeSet<String> = synthetic.objects.iter().map(|(k, _)| k.clone()).collect();
    let points = [
        "the last backup deleted",
        "the last but one backup deleted on timeline 1",
    ];
    for ((point, ours), theirs) in points.iter().zip(&ours).zip(&theirs) {
        if *ours != expected {
            problems.push(format!(
                "killed in the WAL pass of {point} and re-run, barnacle vs the uninterrupted \
                 run: {}",
                difference(ours, &expected)
            ));
        }
        let (left, problem) = left_over(theirs, &expected, &seeded, &synthetic);
        eprintln!(
            "retention kill test: killed before the WAL pass of {point} and re-run, Barman left \
             {left} WAL objects more than an uninterrupted run; barnacle killed in that pass \
             and re-run: {} keys differ",
            ours.symmetric_difference(&expected).count()
        );
        if let Some(problem) = problem {
            problems.push(format!(
                "Barman killed before the WAL pass of {point} and re-run: {problem}"
            ));
        }
        if left == 0 {
            problems.push(format!(
                "Barman killed before the WAL pass of {point} left no WAL: the kill point \
                 does not test what barnacle's order changes"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
