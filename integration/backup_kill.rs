//! A backup killed mid-upload: with SIGTERM (a pod eviction) barnacle writes
//! `backup.info` FAILED and aborts its multipart uploads; with SIGKILL the
//! STARTED `backup.info` stays. Either way Barman lists it as such, no DONE
//! backup appears, and restore does not pick it.

use std::process::Stdio;
use std::time::Duration;

use crate::backup_support::*;
use crate::harness::{self, S3Kind};
use crate::support::{Archive, run, same_output};

/// Starts a backup and sends `signal` once its STARTED `backup.info` is
/// stored and data is flowing; returns the exit status.
fn interrupt_backup(archive: &Archive, primary: &Primary, signal: i32) -> std::process::ExitStatus {
    let mut child = backup_command(
        archive,
        true,
        &primary.pg,
        &["--gzip", "--threads", "1", "-J", "1"],
    )
    .stderr(Stdio::piped())
    .spawn()
    .expect("start barnacle backup");
    let started = harness::poll(Duration::from_secs(60), Duration::from_millis(20), || {
        archive
            .keys()
            .iter()
            .any(|k| k.ends_with("/backup.info"))
            .then_some(())
    });
    assert!(started.is_some(), "no STARTED backup.info appeared");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    child.wait().expect("wait for backup")
}

#[test]
fn a_backup_stopped_by_sigterm_is_failed_with_no_upload_left() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "killterm");
    let primary = primary(&archive, "kill-term", 20);
    let status = interrupt_backup(&archive, &primary, libc::SIGTERM);
    assert_eq!(status.code(), Some(1), "{status:?}");

    let list = same_output(&archive, "barman-cloud-backup-list", &[], &[], 0);
    assert!(list.stdout.contains("FAILED"), "{}", list.stdout);
    let json = same_output(
        &archive,
        "barman-cloud-backup-list",
        &["--format", "json"],
        &[],
        0,
    );
    assert!(
        json.stdout.contains("\"status\": \"FAILED\"")
            && !json.stdout.contains("\"status\": \"DONE\"")
    );
    assert!(
        json.stdout
            .contains("failure uploading data (KeyboardInterrupt)"),
        "{}",
        json.stdout
    );
    let uploads = archive.s3.multipart_uploads(&archive.bucket, "");
    assert!(
        uploads.is_empty(),
        "incomplete multipart uploads left: {uploads:?}"
    );

    // Restore never picks it.
    let dest = harness::scratch("kill-restore").join("data");
    let r = run(archive
        .barnacle("barman-cloud-restore", &[])
        .arg("auto")
        .arg(&dest));
    assert_eq!(r.code, 1, "{r:#?}");
    r.one_line_error("candidate");
}

#[test]
fn a_backup_killed_by_sigkill_stays_started() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "killkill");
    let primary = primary(&archive, "kill-kill", 20);
    let status = interrupt_backup(&archive, &primary, libc::SIGKILL);
    assert_eq!(status.code(), None, "killed by a signal");
    let list = same_output(&archive, "barman-cloud-backup-list", &[], &[], 0);
    assert!(list.stdout.contains("STARTED"), "{}", list.stdout);
    let dest = harness::scratch("kill-restore").join("data");
    let r = run(archive
        .barnacle("barman-cloud-restore", &[])
        .arg("latest")
        .arg(&dest));
    assert_eq!(r.code, 1, "a STARTED backup must not be restored: {r:#?}");
}
