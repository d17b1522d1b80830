//! Helpers for the retention tests: a synthetic but realistic archive (≥ 40
//! backups over 100 simulated days, ≥ 5 000 WAL objects on three timelines,
//! with `.history`, `.partial` and `.backup` files, keep annotations, a FAILED
//! and a STARTED backup) uploaded with many requests in flight, bucket
//! listings, dry runs of both tools side by side, and a PostgreSQL cluster
//! whose WAL starts above the synthetic history.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use barnacle::layout::backup_info::{BackupInfo, BackupStatus};
use barnacle::layout::pyliteral::PyValue;
use chrono::{DateTime, Local, TimeDelta};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::harness::{self, PgCluster, PgConf};
use crate::support::{Archive, Ran, run};

const SEGMENT: u64 = 16 * 1024 * 1024;
/// The synthetic cluster's system identifier.
const SYSTEMID: &str = "7412093861748302941";
/// Requests in flight while seeding (Ceph RGW takes ~44 ms per small PUT).
const IN_FLIGHT: usize = 64;

/// The policy every real delete of these tests applies.
pub const WINDOW: &str = "RECOVERY WINDOW OF 30 DAYS";

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same archive and the same kill points.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// A bucket reached directly with `object_store` (the test process cannot
/// hand credentials to `barnacle::storage::Store`, which reads them from the
/// process environment that other tests share).
pub struct Bucket {
    store: Arc<AmazonS3>,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    pub fn new(archive: &Archive) -> Bucket {
        assert!(
            !archive.s3.kind().is_https(),
            "the seeding client speaks plain HTTP only"
        );
        let store = AmazonS3Builder::new()
            .with_endpoint(archive.s3.endpoint())
            .with_bucket_name(&archive.bucket)
            .with_access_key_id(archive.s3.access_key())
            .with_secret_access_key(archive.s3.secret_key())
            .with_region("us-east-1")
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("object_store client for the test bucket");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Bucket {
            store: Arc::new(store),
            runtime,
        }
    }

    /// Uploads every object, [`IN_FLIGHT`] requests at a time.
    pub fn put_all(&self, objects: &[(String, Vec<u8>)]) {
        let store = self.store.clone();
        self.runtime
            .block_on(async move {
                futures::stream::iter(objects.iter().map(|(key, body)| {
                    let store = store.clone();
                    async move {
                        store
                            .put(&ObjectPath::from(key.as_str()), body.clone().into())
                            .await
                            .map_err(|e| format!("put {key}: {e}"))
                    }
                }))
                .buffer_unordered(IN_FLIGHT)
                .try_collect::<Vec<_>>()
                .await
            })
            .unwrap_or_else(|e| panic!("seeding failed: {e}"));
    }

    /// Every key of the bucket with its size.
    pub fn listing(&self) -> BTreeMap<String, u64> {
        let store = self.store.clone();
        self.runtime
            .block_on(async move {
                store
                    .list(None)
                    .map_ok(|o| (o.location.to_string(), o.size))
                    .try_collect::<BTreeMap<String, u64>>()
                    .await
            })
            .unwrap_or_else(|e| panic!("listing failed: {e}"))
    }
}

/// One synthetic backup.
#[derive(Debug, Clone)]
pub struct Synth {
    pub id: String,
    pub status: BackupStatus,
    pub keep: Option<&'static str>,
    pub name: Option<String>,
    pub begin_wal: String,
    pub end_time: Option<DateTime<Local>>,
}

/// A synthetic archive: the objects to upload and what they describe.
pub struct Synthetic {
    pub objects: Vec<(String, Vec<u8>)>,
    pub backups: Vec<Synth>,
    pub wal_objects: usize,
}

impl Synthetic {
    fn find(&self, what: impl Fn(&Synth) -> bool) -> &Synth {
        self.backups.iter().find(|b| what(b)).expect("in the seed")
    }

    pub fn failed(&self) -> &Synth {
        self.find(|b| b.status == BackupStatus::Failed)
    }

    pub fn started(&self) -> &Synth {
        self.find(|b| b.status == BackupStatus::Started)
    }

    pub fn kept(&self, target: &str) -> &Synth {
        self.find(|b| b.keep == Some(target))
    }

    pub fn named(&self) -> &Synth {
        self.find(|b| b.name.is_some())
    }
}

fn wal_name(tli: u32, segno: u64) -> String {
    format!("{tli:08X}{:08X}{:08X}", segno >> 8, segno & 0xFF)
}

fn lsn(pos: u64) -> String {
    format!("{:X}/{:X}", pos >> 32, pos & 0xFFFF_FFFF)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// The archive of a cluster that ran for 100 days before `now`: `backups`
/// base backups (the newest ~3 days old), about 124 WAL segments between
/// two backups, promotions to timeline 2 and 3 (with the old timeline's last
/// segment as `.partial` and a `.history` file), compression switched from
/// none to gzip early on (with two segments archived both ways), a keep:full
/// and a keep:standalone backup, a FAILED and a STARTED one, split and
/// uncompressed data archives, and names on two backups. Everything is
/// deterministic but for the times, which follow `now`; no backup ends within
/// 14 hours of `now` − 30 days, so a 30-day window cuts the same way for
/// several minutes.
pub fn synthetic(server_prefix: &str, now: DateTime<Local>, backups: usize) -> Synthetic {
    assert!(backups >= 30, "the layout needs at least 30 backups");
    let mut rng = Rng::new(0xBA12_AC1E);
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    let wals = format!("{server_prefix}/wals");
    let base = format!("{server_prefix}/base");
    let gzip_from: u64 = 700;
    let both_ways = [200u64, 433];
    let push_wal = |objects: &mut Vec<(String, Vec<u8>)>, name: &str, segno: u64, tli: u32| {
        let body = format!("synthetic WAL {name}\n").into_bytes();
        let dir = format!("{}/", &name[..16]);
        let plain = tli == 1 && segno < gzip_from;
        if !plain || both_ways.contains(&segno) {
            objects.push((format!("{wals}/{dir}{name}.gz"), gzip(&body)));
        }
        if plain {
            objects.push((format!("{wals}/{dir}{name}"), body));
        }
    };

    let mut tli = 1u32;
    let mut segno = 1u64;
    let mut history = String::new();
    let (switch_a, switch_b) = (backups / 3, 2 * backups / 3);
    let failed = 9;
    let started = backups / 2 + 3;
    let keep_full = backups - 8;
    let keep_standalone = switch_a + 2;
    let split = [3, backups / 2, backups - 7];
    let named = [6, backups - 4];
    let uncompressed = 12;
    let (oldest, newest) = (99.5f64, 2.9f64);
    let step = (oldest - newest) / (backups - 1) as f64;
    let mut synths = Vec::new();
    for k in 0..backups {
        let count = if k == 0 { 12 } else { rng.range(112, 136) };
        for _ in 0..count {
            push_wal(&mut objects, &wal_name(tli, segno), segno, tli);
            segno += 1;
        }
        if k == switch_a || k == switch_b {
            // A promotion in the middle of segment `segno`: the old timeline's
            // segment is archived as .partial, the new one starts in it.
            let at = segno * SEGMENT + rng.range(0x10_0000, 0xF0_0000) / 8 * 8;
            push_wal(
                &mut objects,
                &format!("{}.partial", wal_name(tli, segno)),
                segno,
                tli,
            );
            let _ = writeln!(history, "{tli}\t{}\tno recovery target specified", lsn(at));
            tli += 1;
            // Timeline 2's history file archived plain, timeline 3's gzipped.
            let body = history.clone().into_bytes();
            objects.push(if tli == 2 {
                (format!("{wals}/{tli:08X}.history"), body)
            } else {
                (format!("{wals}/{tli:08X}.history.gz"), gzip(&body))
            });
        }

        let mut days_ago = oldest - step * k as f64;
        if (days_ago - 30.0).abs() < 0.6 {
            days_ago += 0.7;
        }
        let micros = rng.range(0, 999_999) as i64;
        let begin = now - TimeDelta::seconds((days_ago * 86_400.0) as i64)
            + TimeDelta::microseconds(micros);
        let end = begin + TimeDelta::seconds(rng.range(900, 3000) as i64);
        let id = begin.format("%Y%m%dT%H%M%S").to_string();
        let status = match k {
            k if k == failed => BackupStatus::Failed,
            k if k == started => BackupStatus::Started,
            _ => BackupStatus::Done,
        };
        let done = status == BackupStatus::Done;
        let begin_pos = segno * SEGMENT + 0x28;
        let end_segno = segno + rng.range(1, 3);
        let end_pos = end_segno * SEGMENT + rng.range(0x100, 0xFF_FFFF) / 8 * 8;
        let begin_wal = wal_name(tli, segno);
        let label = format!(
            "START WAL LOCATION: {} (file {begin_wal})\nCHECKPOINT LOCATION: {}\n\
             BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: {}\n\
             LABEL: Barman backup cloud {id}\nSTART TIMELINE: {tli}\n",
            lsn(begin_pos),
            lsn(begin_pos + 0x38),
            begin.format("%Y-%m-%d %H:%M:%S %Z"),
        );
        let size = 30_000_000 + 1_000_000 * k as i64;
        let s = |k: &str| PyValue::Str(k.to_string());
        let secs = (end - begin).num_milliseconds() as f64 / 1000.0;
        let name = named.contains(&k).then(|| format!("monthly-{k:02}"));
        let info = BackupInfo {
            backup_label: done.then_some(PyValue::Str(label)),
            backup_name: name.clone(),
            begin_offset: Some(0x28),
            begin_time: Some(begin.fixed_offset()),
            begin_wal: Some(begin_wal.clone()),
            begin_xlog: Some(lsn(begin_pos)),
            cluster_size: Some(size + 4_000_000),
            compression: (k != uncompressed).then(|| "gzip".to_string()),
            config_file: Some("/var/lib/postgresql/data/pgdata/postgresql.conf".into()),
            copy_stats: done.then(|| {
                PyValue::Dict(vec![
                    (s("total_time"), PyValue::Float(secs)),
                    (s("number_of_workers"), PyValue::Int(2)),
                    (s("analysis_time"), PyValue::Int(0)),
                    (s("copy_time"), PyValue::Float(secs)),
                    (s("serialized_copy_time"), PyValue::Float(secs)),
                ])
            }),
            data_checksums: Some("on".into()),
            end_offset: done.then_some((end_pos % SEGMENT) as i64),
            end_time: done.then(|| end.fixed_offset()),
            end_wal: done.then(|| wal_name(tli, end_segno)),
            end_xlog: done.then(|| lsn(end_pos)),
            error: (status == BackupStatus::Failed).then(|| {
                "failure uploading data (Connection was closed before we received a valid \
                 response from endpoint URL)"
                    .to_string()
            }),
            hba_file: Some("/var/lib/postgresql/data/pgdata/pg_hba.conf".into()),
            ident_file: Some("/var/lib/postgresql/data/pgdata/pg_ident.conf".into()),
            pgdata: Some("/var/lib/postgresql/data/pgdata".into()),
            server_name: Some("cloud".into()),
            size: done.then_some(size),
            status: Some(status.clone()),
            systemid: Some(SYSTEMID.into()),
            tablespaces: None,
            timeline: Some(i64::from(tli)),
            version: Some(150008),
            ..BackupInfo::default()
        };
        let dir = format!("{base}/{id}");
        objects.push((format!("{dir}/backup.info"), info.to_text().into_bytes()));
        let data = format!("synthetic base backup {id}\n").into_bytes();
        if k == uncompressed {
            objects.push((format!("{dir}/data.tar"), data));
        } else if status != BackupStatus::Failed {
            objects.push((format!("{dir}/data.tar.gz"), gzip(&data)));
            if split.contains(&k) {
                for part in 1..=2 {
                    objects.push((format!("{dir}/data_{part:04}.tar.gz"), gzip(&data)));
                }
            }
        }
        let keep = match k {
            k if k == keep_full => Some("full"),
            k if k == keep_standalone => Some("standalone"),
            _ => None,
        };
        if let Some(target) = keep {
            objects.push((
                format!("{dir}/annotations/keep"),
                target.as_bytes().to_vec(),
            ));
        }
        if done {
            let name = format!("{begin_wal}.00000028.backup");
            push_wal(&mut objects, &name, segno, tli);
        }
        synths.push(Synth {
            id,
            status,
            keep,
            name,
            begin_wal,
            end_time: done.then_some(end),
        });
    }
    // Archiving went on after the newest backup.
    for _ in 0..40 {
        push_wal(&mut objects, &wal_name(tli, segno), segno, tli);
        segno += 1;
    }
    assert!(
        segno < 0x20 << 8,
        "the synthetic WAL must stay below log 0x20"
    );
    let wal_objects = objects
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{wals}/")))
        .count();
    Synthetic {
        objects,
        backups: synths,
        wal_objects,
    }
}

/// The server prefix of `archive` (`cluster/pg`).
pub fn server_prefix(archive: &Archive) -> String {
    format!("{}/{}", archive.prefix, archive.server)
}

/// Seeds `archive` with [`synthetic`] and returns it.
pub fn seed(archive: &Archive, now: DateTime<Local>, backups: usize) -> Synthetic {
    let started = std::time::Instant::now();
    let synthetic = synthetic(&server_prefix(archive), now, backups);
    Bucket::new(archive).put_all(&synthetic.objects);
    eprintln!(
        "retention: seeded {} objects ({} backups, {} WAL objects) into {:?} {} in {:.1?}",
        synthetic.objects.len(),
        synthetic.backups.len(),
        synthetic.wal_objects,
        archive.s3.kind(),
        archive.bucket,
        started.elapsed()
    );
    synthetic
}

/// `barman-cloud-backup-delete ARGS` by barnacle and by Barman on the same
/// archive, run at the same time; both must exit `code` and print the same
/// stdout. Returns barnacle's run.
pub fn same_delete(archive: &Archive, args: &[&str], code: i32) -> Ran {
    let tool = "barman-cloud-backup-delete";
    let timed = |mut cmd: Command| {
        let started = std::time::Instant::now();
        let ran = run(&mut cmd);
        (ran, started.elapsed())
    };
    let ((ours, our_time), (theirs, their_time)) = std::thread::scope(|s| {
        let ours = s.spawn(|| timed(archive.barnacle(tool, args)));
        let theirs = timed(archive.barman(tool, args));
        (ours.join().expect("barnacle thread"), theirs)
    });
    eprintln!(
        "retention: delete {args:?} on {:?}: exit {}, {} lines; barnacle {our_time:.2?}, Barman {their_time:.2?}",
        archive.s3.kind(),
        ours.code,
        ours.stdout.lines().count()
    );
    assert_eq!(theirs.code, code, "Barman's delete {args:?}: {theirs:#?}");
    assert_eq!(ours.code, code, "barnacle's delete {args:?}: {ours:#?}");
    if ours.stdout != theirs.stdout {
        let (a, b): (Vec<&str>, Vec<&str>) = (
            ours.stdout.lines().collect(),
            theirs.stdout.lines().collect(),
        );
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "delete {args:?} on {:?} prints differently: barnacle {} lines, Barman {} lines; first difference at line {first}:\nbarnacle: {:?}\nBarman:   {:?}",
            archive.s3.kind(),
            a.len(),
            b.len(),
            a.get(first),
            b.get(first)
        );
    }
    ours
}

/// [`same_delete`] for several requests, `parallel` at a time.
pub fn same_deletes(archive: &Archive, cases: &[(Vec<&str>, i32)], parallel: usize) -> Vec<Ran> {
    let mut out = Vec::new();
    for chunk in cases.chunks(parallel.max(1)) {
        std::thread::scope(|s| {
            let runs: Vec<_> = chunk
                .iter()
                .map(|(args, code)| s.spawn(move || same_delete(archive, args, *code)))
                .collect();
            for r in runs {
                out.push(r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
    }
    out
}

/// The backup ids a dry run's stdout deletes, in order.
pub fn dry_run_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("Skipping deletion of objects ["))
        .filter_map(|l| {
            let info = l.split(", ").find(|p| p.contains("/backup.info'"))?;
            let id = info.rsplit('/').nth(1)?;
            Some(id.to_string())
        })
        .collect()
}

/// initdb's a cluster whose first WAL segment is `first_wal`
/// (`pg_resetwal -l` right after initdb, before the first start), then
/// starts it with the harness's settings and the caller's.
pub fn cluster_starting_at(
    dir: &Path,
    first_wal: &str,
    configure: impl FnOnce(&mut PgConf),
) -> PgCluster {
    std::fs::create_dir_all(dir).expect("create cluster dir");
    harness::chown_postgres(dir);
    let data = dir.join("data");
    let bin = "/usr/lib/postgresql/15/bin";
    harness::run_ok(
        harness::as_postgres(&mut Command::new(format!("{bin}/initdb")))
            .args("-A trust -U postgres --no-sync -E UTF8 --locale=C -D".split(' '))
            .arg(&data),
    );
    harness::run_ok(
        harness::as_postgres(&mut Command::new(format!("{bin}/pg_resetwal")))
            .args(["-l", first_wal, "-D"])
            .arg(&data),
    );
    PgCluster::from_data_dir(&data, |c| {
        c.set("wal_level", "replica").set("fsync", "off");
        configure(c);
    })
}
