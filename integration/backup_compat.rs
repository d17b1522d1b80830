//! Each base-backup compression (gzip, bzip2, lz4, snappy) both ways: a
//! backup by barnacle restored by `barman-cloud-restore`, and a backup by
//! Barman restored by barnacle; each restored cluster then recovers from the
//! archive and holds the data. On Ceph RGW.

use crate::backup_support::*;
use crate::harness::{self, S3Kind};
use crate::support::{Archive, run};

fn both_ways(flag: &str) {
    let archive = Archive::new(
        S3Kind::CephHttp,
        &format!("bk{}", flag.trim_start_matches('-')),
    );
    let primary = primary(&archive, &format!("compat{flag}"), 1);
    for barnacle_backs_up in [true, false] {
        run(&mut backup_command(
            &archive,
            barnacle_backs_up,
            &primary.pg,
            &[flag],
        ))
        .ok("backup");
        let id = newest_backup_id(&archive);
        let suffix = match flag {
            "--gzip" => ".tar.gz",
            "--bzip2" => ".tar.bz2",
            "--lz4" => ".tar.lz4",
            _ => ".tar.snappy",
        };
        assert!(
            archive
                .keys()
                .iter()
                .any(|k| k.ends_with(&format!("base/{id}/data{suffix}"))),
            "{flag}: {:?}",
            archive.keys()
        );
        let last = primary.pg.switch_wal();
        primary
            .pg
            .wait_archived(&last, std::time::Duration::from_secs(60));

        let dest = harness::scratch("compat-restore");
        let (data, ts) = (dest.join("data"), dest.join("ts1"));
        let relocate = format!("ts1:{}", ts.display());
        let pg = if barnacle_backs_up {
            run(archive
                .barman("barman-cloud-restore", &["--tablespace", &relocate])
                .arg(&id)
                .arg(&data))
            .ok("barman-cloud-restore");
            recover_and_check(
                &archive,
                &data,
                Some(&ts),
                Some(barman_restore_command(&archive)),
                None,
            )
        } else {
            run(archive
                .barnacle(
                    "barman-cloud-restore",
                    &["--recovery-conf", "--tablespace", &relocate],
                )
                .arg(&id)
                .arg(&data))
            .ok("barnacle restore");
            recover_and_check(&archive, &data, Some(&ts), None, None)
        };
        assert_eq!(
            pg.psql("select count(*) from pgbench_accounts"),
            "100000",
            "{flag}"
        );
        assert_eq!(pg.psql("select count(*) from in_ts1"), "50000", "{flag}");
    }
}

#[test]
fn gzip_backups_restore_both_ways() {
    both_ways("--gzip");
}

#[test]
fn bzip2_backups_restore_both_ways() {
    both_ways("--bzip2");
}

#[test]
fn lz4_backups_restore_both_ways() {
    both_ways("--lz4");
}

#[test]
fn snappy_backups_restore_both_ways() {
    both_ways("--snappy");
}
