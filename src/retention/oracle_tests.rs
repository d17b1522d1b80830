//! Property tests of the planner against the spec-written [oracle](super::oracle),
//! over random but *realistic* histories: backups in time order whose LSNs
//! only grow, timelines that only go up (by 1 or 2 at a promotion, leaving a
//! `.partial` and a `.history`), DONE/FAILED/STARTED backups (half the
//! FAILED ones without any WAL fields), keep full/standalone/empty/other,
//! end times over ~90 days, archives that keep only the WALs near each
//! backup (so several hash directories and gaps), one compression per run.
//!
//! Properties (each plan is made in both modes):
//! 1. A policy deletes exactly the oracle's OBSOLETE backups, oldest first;
//!    never a non-DONE one, never one with a non-empty keep; `-b` never
//!    deletes a backup with a keep and deletes at most the one named.
//! 2. The newest DONE backup survives every RECOVERY WINDOW and every
//!    REDUNDANCY whose effective value max(N, -m) is at least 1
//!    (`REDUNDANCY 0 -m 0` deletes it: Barman's behaviour).
//! 3. WAL needed by what remains is kept. For every remaining DONE backup B
//!    that is not keep:standalone and every deleted WAL object w (a key, or
//!    any key under a deleted prefix): `tli(w) < tli(B)`, or `tli(w) ==
//!    tli(B)` and `name(w) < B.begin_wal` as strings. So B's own timeline
//!    from its `begin_wal` on (its `.backup` file included) and every later
//!    timeline survive; earlier timelines may go.
//! 4. For every remaining keep:standalone backup S, no deleted segment or
//!    `.backup` file has its first 24 characters in `[S.begin_wal,
//!    S.end_wal]` (the `.partial` of `end_wal` is not protected by Barman).
//! 5. No `.history` file is deleted.
//! 6. The WAL objects gone are the same in a real run and a dry run, and
//!    equal the oracle's (unless Barman raised midway).
//! 7. Idempotence: applying the plan and planning again deletes nothing
//!    (for `-b`, asking again for the id that was deleted).
//! 8. Shape: each deletion's `backup.info` comes after its files; WAL keys
//!    are sorted.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::oracle::{self, Backup};
use super::{Inventory, Mode, Plan, Policy, RecoveryWindow, Request, WindowUnit, plan};
use crate::catalog::KeepTarget;
use crate::catalog::load::Catalog;
use crate::layout::ServerPrefix;
use crate::layout::backup_info::{BackupInfo, BackupStatus};

const SEG: u64 = 1 << 24;

/// How one backup comes after the previous one.
#[derive(Debug, Clone)]
struct Step {
    gap_minutes: u32,
    promotion: u8,
    jump: (u8, u16),
    length: u8,
    status: u8,
    keep: u8,
    duration_minutes: u16,
    margin: (u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    (
        30u32..20_000,
        0u8..10,
        (0u8..20, 0u16..700),
        0u8..4,
        0u8..20,
        0u8..20,
        1u16..180,
        (0u8..7, 1u8..5),
    )
        .prop_map(
            |(gap_minutes, promotion, jump, length, status, keep, duration_minutes, margin)| Step {
                gap_minutes,
                promotion,
                jump,
                length,
                status,
                keep,
                duration_minutes,
                margin,
            },
        )
}

fn segment(tli: u32, lsn: u64) -> String {
    format!("{tli:08X}{:08X}{:08X}", lsn >> 32, (lsn >> 24) & 0xFF)
}

/// Builds the bucket; returns the inventory, the oracle's view and `now`.
fn history(
    steps: &[Step],
    path: &str,
    ext: &str,
    now_after: u32,
) -> (Inventory, Vec<Backup>, DateTime<FixedOffset>) {
    let prefix = ServerPrefix::new(path, "pg");
    let root = prefix.wals_root();
    let wal_key = |name: &str| {
        if name.ends_with(".history") {
            format!("{root}{name}{ext}")
        } else {
            format!("{root}{}/{name}{ext}", &name[..16])
        }
    };
    let mut t = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .map(|t| t.fixed_offset())
        .unwrap_or_default();
    let (mut tli, mut lsn) = (1u32, 3 * SEG + 40);
    let mut wals = BTreeSet::new();
    let mut backups = Vec::new();
    let mut catalog = Catalog::default();
    for s in steps {
        t += TimeDelta::minutes(i64::from(s.gap_minutes));
        if s.promotion < 2 {
            wals.insert(wal_key(&format!("{}.partial", segment(tli, lsn))));
            tli += 1 + u32::from(s.promotion);
            wals.insert(wal_key(&format!("{tli:08X}.history")));
        }
        let boundary = (((lsn >> 32) + 1) << 32) - u64::from(s.jump.1 % 3 + 1) * SEG;
        lsn = match s.jump.0 {
            0..=2 => boundary.max(lsn),
            3..=4 => lsn + u64::from(s.jump.1) * SEG,
            _ => lsn + u64::from(s.jump.1 % 7) * SEG + u64::from(s.jump.1) * 977,
        };
        let begin = lsn;
        let end = begin + u64::from(s.length) * SEG + 4096;
        lsn = end + SEG;
        for seg in (begin >> 24).saturating_sub(u64::from(s.margin.0))
            ..=(end >> 24) + u64::from(s.margin.1)
        {
            wals.insert(wal_key(&segment(tli, seg << 24)));
        }
        let id = t.format("%Y%m%dT%H%M%S").to_string();
        let status = match s.status {
            0..=14 => BackupStatus::Done,
            15..=17 => BackupStatus::Failed,
            _ => BackupStatus::Started,
        };
        let without_wal = status == BackupStatus::Failed && s.status == 17;
        let mut info = BackupInfo {
            status: Some(status.clone()),
            timeline: Some(i64::from(tli)),
            begin_wal: Some(segment(tli, begin)),
            end_wal: Some(segment(tli, end)),
            begin_time: Some(t),
            end_time: Some(t + TimeDelta::minutes(i64::from(s.duration_minutes))),
            ..BackupInfo::default()
        };
        if without_wal {
            (info.timeline, info.begin_wal, info.end_wal, info.end_time) = (None, None, None, None);
        } else {
            wals.insert(wal_key(&format!(
                "{}.{:08X}.backup",
                segment(tli, begin),
                begin % SEG
            )));
        }
        if status == BackupStatus::Started {
            (info.end_wal, info.end_time) = (None, None);
        }
        let keep = match (status == BackupStatus::Done, s.keep) {
            (true, 13..=14) => Some(KeepTarget::Full),
            (true, 15..=17) => Some(KeepTarget::Standalone),
            (true, 18) => Some(KeepTarget::Other(String::new())),
            (true, 19) => Some(KeepTarget::Other("bogus".into())),
            _ => None,
        };
        catalog.keys.push(prefix.backup_info_key(&id));
        catalog
            .keys
            .push(format!("{}data.tar.gz", prefix.backup_dir(&id)));
        if s.length == 2 {
            catalog
                .keys
                .push(format!("{}data_0001.tar.gz", prefix.backup_dir(&id)));
        }
        if let Some(k) = &keep {
            catalog.keys.push(prefix.keep_key(&id));
            catalog.keep.insert(id.clone(), k.clone());
        }
        catalog.backups.push((id.clone(), info.clone()));
        backups.push(Backup { id, info, keep });
    }
    let now = t + TimeDelta::minutes(i64::from(now_after));
    let inv = Inventory::new(prefix, "pg", catalog, wals.into_iter().collect());
    (inv, backups, now)
}

fn request() -> impl Strategy<Value = (u8, u64, u64, u8)> {
    (0u8..10, 0u64..100, 0u64..4, 0u8..40)
}

fn make_request((kind, value, minimum, pick): (u8, u64, u64, u8), backups: &[Backup]) -> Request {
    let window = |value, unit| Policy::RecoveryWindow(RecoveryWindow { value, unit });
    let policy = match kind {
        0..=3 => Policy::Redundancy(value % 6),
        4..=5 => window(value, WindowUnit::Days),
        6 => window(value % 14, WindowUnit::Weeks),
        7 => window(value % 4, WindowUnit::Months),
        _ => {
            let identifier = match backups.get(usize::from(pick)) {
                Some(b) => b.id.clone(),
                None if pick % 2 == 0 => "oldest".into(),
                None => "20000101T000000".into(),
            };
            return Request::Backup {
                identifier,
                minimum_redundancy: minimum,
            };
        }
    };
    Request::Policy {
        policy,
        minimum_redundancy: minimum,
    }
}

/// Every WAL object gone: the keys, and what was listed under the prefixes.
fn wal_union(plan: &Plan, listing: &[String]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = plan
        .deletions
        .iter()
        .flat_map(|d| d.wal_keys.clone())
        .collect();
    for p in plan.deletions.iter().flat_map(|d| &d.wal_prefixes) {
        out.extend(
            listing
                .iter()
                .filter(|k| k.starts_with(p.as_str()))
                .cloned(),
        );
    }
    out
}

fn name_of(key: &str) -> &str {
    let base = key.rsplit('/').next().unwrap_or(key);
    [".gz", ".bz2", ".zst"]
        .iter()
        .find_map(|e| base.strip_suffix(e))
        .unwrap_or(base)
}

fn tli_of(name: &str) -> i64 {
    i64::from_str_radix(&name[..8], 16).unwrap_or(-1)
}

fn check(
    inv: &Inventory,
    backups: &[Backup],
    req: &Request,
    now: DateTime<FixedOffset>,
) -> Result<(), TestCaseError> {
    let real = match plan(inv, req, Mode::Execute, &now) {
        Ok(p) => p,
        Err(_) => return Ok(()), // a refusal deletes nothing
    };
    let dry = plan(inv, req, Mode::DryRun, &now).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(real.deleted_backups(), dry.deleted_backups());
    let deleted: Vec<&str> = real.deleted_backups();
    let by_id = |id: &str| backups.iter().find(|b| b.id == id);
    let newest_done = backups
        .iter()
        .rev()
        .find(|b| b.info.status == Some(BackupStatus::Done));

    // 1 and 2
    match req {
        Request::Policy {
            policy,
            minimum_redundancy,
        } => {
            let mut sorted = deleted.clone();
            sorted.sort_unstable();
            prop_assert_eq!(&sorted, &deleted, "oldest first");
            if real.abort.is_none() {
                let expected = oracle::obsolete(policy, *minimum_redundancy, backups, now);
                let got: BTreeSet<String> = deleted.iter().map(|s| s.to_string()).collect();
                prop_assert_eq!(got, expected);
            }
            for id in &deleted {
                let b = by_id(id).ok_or_else(|| TestCaseError::fail("unknown id"))?;
                prop_assert_eq!(b.info.status.clone(), Some(BackupStatus::Done));
                prop_assert!(b.keep.as_ref().is_none_or(|k| k.as_str().is_empty()));
            }
            let effective = match policy {
                Policy::Redundancy(n) => (*n).max(*minimum_redundancy),
                Policy::RecoveryWindow(_) => 1,
            };
            if let (Some(newest), true) = (newest_done, effective >= 1) {
                prop_assert!(
                    !deleted.contains(&newest.id.as_str()),
                    "newest DONE deleted"
                );
            }
        }
        Request::Backup { .. } => {
            prop_assert!(deleted.len() <= 1);
            for id in &deleted {
                prop_assert!(by_id(id).is_some_and(|b| b.keep.is_none()));
            }
        }
    }

    // 3, 4, 5
    let gone = wal_union(&real, &inv.wal_keys);
    let remaining: Vec<&Backup> = backups
        .iter()
        .filter(|b| !deleted.contains(&b.id.as_str()))
        .collect();
    for w in &gone {
        let name = name_of(w);
        prop_assert!(!name.ends_with(".history"), "history deleted: {}", w);
        for b in remaining
            .iter()
            .filter(|b| b.info.status == Some(BackupStatus::Done))
        {
            let (Some(tli), Some(begin), Some(end)) =
                (b.info.timeline, &b.info.begin_wal, &b.info.end_wal)
            else {
                continue;
            };
            if b.keep == Some(KeepTarget::Standalone) {
                if !name.ends_with(".partial") {
                    let r = &name[..24];
                    prop_assert!(
                        !(r >= begin.as_str() && r <= end.as_str()),
                        "{} needed by standalone {}",
                        w,
                        b.id
                    );
                }
            } else {
                prop_assert!(
                    tli_of(name) < tli || (tli_of(name) == tli && name < begin.as_str()),
                    "{} needed by {}",
                    w,
                    b.id
                );
            }
        }
    }

    // 6
    prop_assert_eq!(&gone, &wal_union(&dry, &inv.wal_keys));
    if real.abort.is_none() {
        let order: Vec<String> = deleted.iter().map(|s| s.to_string()).collect();
        let policy = matches!(req, Request::Policy { .. });
        let expected = oracle::wal_deletions(
            &inv.prefix.wals_root(),
            backups,
            &inv.wal_keys,
            &order,
            policy,
        );
        prop_assert_eq!(&gone, &expected);
    }

    // 7
    if real.abort.is_none() {
        let mut after = inv.clone();
        after.apply(&real);
        prop_assert_eq!(after.wal_keys.len(), inv.wal_keys.len() - gone.len());
        // A shortcut (`oldest`) designates another backup next time: ask for the id.
        let again_req = match (req, deleted.first()) {
            (
                Request::Backup {
                    minimum_redundancy, ..
                },
                Some(id),
            ) => Request::Backup {
                identifier: id.to_string(),
                minimum_redundancy: *minimum_redundancy,
            },
            _ => req.clone(),
        };
        if let Ok(again) = plan(&after, &again_req, Mode::Execute, &now) {
            prop_assert!(
                again.deletions.is_empty(),
                "second plan deletes {:?}",
                again.deleted_backups()
            );
        }
    }

    // 8
    for d in &real.deletions {
        prop_assert_eq!(d.objects().last().copied(), Some(d.backup_info.as_str()));
        prop_assert!(d.wal_keys.windows(2).all(|w| w[0] < w[1]));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn plans_are_safe_and_match_the_oracle(
        steps in prop::collection::vec(step(), 0..10),
        path in prop::sample::select(vec!["", "bucket/path", "x/"]),
        ext in prop::sample::select(vec!["", ".gz", ".bz2", ".zst"]),
        now_after in 0u32..(20 * 1440),
        req in request(),
    ) {
        let (inv, backups, now) = history(&steps, path, ext, now_after);
        let req = make_request(req, &backups);
        check(&inv, &backups, &req, now)?;
    }
}
