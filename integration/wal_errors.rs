//! Exit codes and error messages of `walpush` and `restore` on bad input,
//! each compared with what Barman 3.19's own tool returns for the same input:
//! one line naming the cause, Barman's exit code, no panic, no credential.

use std::fs;
use std::process::Command;

use crate::harness::{self, S3Kind};
use crate::support::{Archive, Ran, file_name, real_wal, run};

/// Runs barnacle's and Barman's command for one case; both must exit `code`,
/// barnacle with one line naming `cause` and no secret.
fn case(
    what: &str,
    mut ours: Command,
    barman: Option<Command>,
    code: i32,
    cause: &str,
    secret: &str,
) -> Ran {
    let r = run(&mut ours);
    assert_eq!(r.code, code, "{what}: barnacle exit code: {r:#?}");
    if code != 0 {
        r.one_line_error(cause);
    }
    assert!(
        !r.stderr.contains(secret) && !r.stdout.contains(secret),
        "{what}: secret leaked: {r:#?}"
    );
    if let Some(mut barman) = barman {
        let b = run(&mut barman);
        assert_eq!(b.code, code, "{what}: Barman's exit code differs: {b:#?}");
    }
    r
}

#[test]
fn walpush_bad_input() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "errpush");
    let secret = archive.s3.secret_key().to_string();
    let segment = &real_wal()[0];
    let dir = harness::scratch("errpush");
    let missing = dir.join("000000010000000000000099");
    let badname = dir.join("RECOVERYXLOG");
    fs::write(&badname, b"x").unwrap();
    let both = |args: &[&str], path: &std::path::Path| {
        let mut ours = archive.barnacle("barman-cloud-wal-archive", args);
        ours.arg(path);
        let mut theirs = archive.barman("barman-cloud-wal-archive", args);
        theirs.arg(path);
        (ours, Some(theirs))
    };

    let (o, b) = both(&[], &missing);
    case("missing file", o, b, 4, "no such file", &secret);
    let (o, b) = both(&[], &badname);
    case(
        "malformed WAL name",
        o,
        b,
        3,
        "invalid name for a WAL file",
        &secret,
    );
    let (o, b) = both(&["--bogus-option"], segment);
    case("unknown option", o, b, 3, "bogus-option", &secret);
    let (o, b) = both(&["--compression-level", "fastest", "-z"], segment);
    case("bad compression level", o, b, 3, "fastest", &secret);

    // Unknown bucket, through both tools. On Ceph RGW: SeaweedFS creates a
    // missing bucket on the first PUT, so Barman "succeeds" there.
    let ceph = harness::s3(S3Kind::CephHttp);
    let mut ours = harness::barnacle("walpush");
    ours.envs(ceph.env())
        .args([
            "--endpoint-url",
            &ceph.endpoint(),
            "s3://no-such-bucket-xyz/p",
            "pg",
        ])
        .arg(segment);
    let mut theirs = harness::barman("barman-cloud-wal-archive");
    theirs
        .envs(ceph.barman_env())
        .args([
            "--endpoint-url",
            &ceph.endpoint(),
            "s3://no-such-bucket-xyz/p",
            "pg",
        ])
        .arg(segment);
    case(
        "unknown bucket",
        ours,
        Some(theirs),
        4,
        "does not exist",
        &secret,
    );

    // Unreachable endpoint (nothing listens on the port).
    let dead = format!("http://127.0.0.1:{}", harness::free_port());
    let mut ours = harness::barnacle("walpush");
    ours.envs(archive.s3.env())
        .args(["--endpoint-url", &dead, &archive.url(), "pg"])
        .arg(segment);
    case(
        "unreachable endpoint",
        ours,
        None,
        4,
        "cannot reach",
        &secret,
    );

    // Wrong secret: refused, and the secret never printed.
    let wrong = "wrong-secret-value-1234";
    let mut ours = archive.barnacle("walpush", &[]);
    ours.env("AWS_SECRET_ACCESS_KEY", wrong).arg(segment);
    case("wrong credentials", ours, None, 4, "refused", wrong);

    // No credentials at all.
    let mut ours = archive.barnacle("walpush", &[]);
    ours.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .arg(segment);
    case(
        "missing credentials",
        ours,
        None,
        4,
        "no credentials",
        &secret,
    );

    // Bad URL.
    let mut ours = harness::barnacle("walpush");
    ours.envs(archive.s3.env())
        .args(["ftp://host/x", "pg"])
        .arg(segment);
    case("bad URL", ours, None, 4, "ftp://host/x", &secret);

    // No WAL_PATH: Barman's uncaught exception exits 1.
    let mut ours = archive.barnacle("barman-cloud-wal-archive", &[]);
    ours.env_remove("BARMAN_HOOK");
    let theirs = archive.barman("barman-cloud-wal-archive", &[]);
    case(
        "missing WAL_PATH",
        ours,
        Some(theirs),
        1,
        "wal_path",
        &secret,
    );

    // -t: 0 when the bucket exists, 1 when it does not, 2 when unreachable.
    let (o, b) = both(&["-t"], segment);
    case("-t ok", o, b, 0, "", &secret);
    let mut ours = harness::barnacle("barman-cloud-wal-archive");
    ours.envs(archive.s3.env())
        .args([
            "-t",
            "--endpoint-url",
            &archive.s3.endpoint(),
            "s3://no-such-bucket-xyz",
            "pg",
        ])
        .arg(segment);
    let mut theirs = harness::barman("barman-cloud-wal-archive");
    theirs
        .envs(archive.s3.barman_env())
        .args([
            "-t",
            "--endpoint-url",
            &archive.s3.endpoint(),
            "s3://no-such-bucket-xyz",
            "pg",
        ])
        .arg(segment);
    case(
        "-t missing bucket",
        ours,
        Some(theirs),
        1,
        "does not exist",
        &secret,
    );
    let mut ours = harness::barnacle("barman-cloud-wal-archive");
    ours.envs(archive.s3.env())
        .args(["-t", "--endpoint-url", &dead, &archive.url(), "pg"])
        .arg(segment);
    case("-t unreachable", ours, None, 2, "cannot reach", &secret);
}

#[test]
fn restore_bad_input() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "errrestore");
    let secret = archive.s3.secret_key().to_string();
    let segments = real_wal();
    let dir = harness::scratch("errrestore");
    let both = |args: &[&str], name: &str, dest: &std::path::Path| {
        let mut ours = archive.barnacle("barman-cloud-wal-restore", args);
        ours.arg(name).arg(dest);
        let mut theirs = archive.barman("barman-cloud-wal-restore", args);
        theirs.arg(name).arg(dest);
        (ours, Some(theirs))
    };

    let (o, b) = both(&[], "000000010000000000000042", &dir.join("x"));
    case("not found", o, b, 1, "does not exist", &secret);
    let (o, b) = both(&[], "RECOVERYHISTORY", &dir.join("x"));
    case(
        "malformed name",
        o,
        b,
        3,
        "invalid name for a WAL file",
        &secret,
    );
    let (o, b) = both(
        &["--parallel", "x"],
        "000000010000000000000042",
        &dir.join("x"),
    );
    case("bad option value", o, b, 3, "parallel", &secret);

    // Objects that are corrupt, truncated, or whose checksum does not match.
    let good = &segments[0];
    let name = file_name(good);
    run(archive.barnacle("walpush", &[]).arg(good)).ok("walpush");
    let key = archive.wal_key(&name, ".gz");
    let body = archive.s3.get_object(&archive.bucket, &key);
    let meta = archive.s3.head_metadata(&archive.bucket, &key);
    let digest = meta
        .get("barnacle-blake3")
        .cloned()
        .expect("digest metadata");
    let zeros = "0".repeat(64);

    // (what, body, recorded digest, cause); an earlier build recorded SHA-256.
    let corrupt_cases = [
        (
            "truncated object",
            body[..body.len() / 2].to_vec(),
            ("barnacle-blake3", digest.as_str()),
            "corrupt or truncated",
        ),
        (
            "corrupt object",
            b"this is not gzip at all".to_vec(),
            ("barnacle-blake3", digest.as_str()),
            "corrupt or truncated",
        ),
        (
            "checksum mismatch",
            body.clone(),
            ("barnacle-blake3", zeros.as_str()),
            "checksum mismatch: the content's BLAKE3",
        ),
        (
            "SHA-256 mismatch",
            body.clone(),
            ("barnacle-sha256", zeros.as_str()),
            "checksum mismatch: the content's SHA-256",
        ),
    ];
    for (what, bytes, recorded, cause) in corrupt_cases {
        archive
            .s3
            .put_object_with_metadata(&archive.bucket, &key, &bytes, &[recorded]);
        let dest = dir.join(format!("dest-{}", what.replace(' ', "-")));
        let mut ours = archive.barnacle("restore", &[]);
        ours.arg(&name).arg(&dest);
        case(what, ours, None, 4, cause, &secret);
        assert!(
            !dest.exists(),
            "{what}: a partial destination file was left"
        );
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| file_name(&e.unwrap().path()))
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{what}: temp files left: {leftovers:?}"
        );
    }
    // Barman agrees that a truncated gzip is an error (4).
    archive
        .s3
        .put_object_with_metadata(&archive.bucket, &key, &body[..body.len() / 2], &[]);
    let (_, b) = both(&[], &name, &dir.join("barman-dest"));
    assert_eq!(run(&mut b.unwrap()).code, 4);

    // Spool problems: exit 2 (the spool directory is a file).
    for seg in &segments[1..4] {
        run(archive.barnacle("walpush", &[]).arg(seg)).ok("walpush");
    }
    let spool_file = dir.join("spool-is-a-file");
    fs::write(&spool_file, b"").unwrap();
    let spool = spool_file.join("sub");
    let (o, b) = both(
        &["-p", "3", "--spool-dir", &spool.display().to_string()],
        &file_name(&segments[1]),
        &dir.join("y"),
    );
    case("unusable spool directory", o, b, 2, "spool", &secret);

    // Destination directory missing: 4.
    let (o, b) = both(&[], &file_name(&segments[1]), &dir.join("no/such/dir/x"));
    case(
        "destination directory missing",
        o,
        b,
        4,
        "no such file",
        &secret,
    );

    // Unreachable endpoint: 4 (a network error during a normal operation).
    let dead = format!("http://127.0.0.1:{}", harness::free_port());
    let mut ours = harness::barnacle("restore");
    ours.envs(archive.s3.env())
        .args([
            "--endpoint-url",
            &dead,
            &archive.url(),
            "pg",
            &file_name(&segments[1]),
        ])
        .arg(dir.join("z"));
    case(
        "unreachable endpoint",
        ours,
        None,
        4,
        "cannot reach",
        &secret,
    );
}

#[test]
fn restore_prefetches_into_the_spool_and_serves_from_it() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "spool");
    let segments = &real_wal()[..5];
    for seg in segments {
        run(archive.barnacle("walpush", &[]).arg(seg)).ok("walpush");
    }
    let dir = harness::scratch("spool");
    let spool = dir.join("spool");
    let spool_arg = spool.display().to_string();
    let first = dir.join("first");
    run(archive
        .barnacle("restore", &["-p", "3", "--spool-dir", &spool_arg])
        .arg(file_name(&segments[0]))
        .arg(&first))
    .ok("restore -p 3");
    assert!(fs::read(&first).unwrap() == fs::read(&segments[0]).unwrap());
    let mut spooled: Vec<String> = fs::read_dir(&spool)
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    spooled.sort();
    assert_eq!(
        spooled,
        [file_name(&segments[1]), file_name(&segments[2])],
        "no .tmp files, the next two segments"
    );
    // The next request is served from the spool, even with the store gone.
    let second = dir.join("second");
    let mut cmd = harness::barnacle("restore");
    cmd.envs(archive.s3.env())
        .args([
            "--endpoint-url",
            &format!("http://127.0.0.1:{}", harness::free_port()),
        ])
        .args([
            "--spool-dir",
            &spool_arg,
            &archive.url(),
            "pg",
            &file_name(&segments[1]),
        ])
        .arg(&second);
    run(&mut cmd).ok("restore from spool");
    assert!(fs::read(&second).unwrap() == fs::read(&segments[1]).unwrap());
    assert!(
        !spool.join(file_name(&segments[1])).exists(),
        "spooled file was moved, not copied"
    );
    assert_eq!(
        barnacle::archive::spool_hits(&spool),
        1,
        "the spool hit is counted"
    );
}
