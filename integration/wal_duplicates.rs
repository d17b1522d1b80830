//! The duplicate rules of `walpush`: the same content pushed again succeeds
//! without a second upload; different content fails (exit 4) and leaves the
//! archived object alone, whatever compression either copy uses and whoever
//! pushed it; `.history` files are never overwritten; concurrent pushes
//! cannot both write. On a store with conditional writes, with conditional
//! writes disabled (`AWS_CONDITIONAL_PUT=disabled`, as for stores without
//! them), and on the local `file://` store.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{self, S3Kind};
use crate::support::{Archive, file_name, real_wal, run};

/// A file named `name` holding `content`, in a fresh directory.
fn wal_file(name: &str, content: &[u8]) -> PathBuf {
    let path = harness::scratch("dup").join(name);
    fs::write(&path, content).expect("write WAL file");
    path
}

/// The rules, against an archive reached through `push` (walpush with the
/// store's options) and read through `object` (raw bytes of a key, if present).
fn check_rules(
    push: &dyn Fn(&[&str], &Path) -> Command,
    object: &dyn Fn(&str) -> Option<Vec<u8>>,
    key: &dyn Fn(&str, &str) -> String,
) {
    let segments = real_wal();
    let a = fs::read(&segments[0]).unwrap();
    let b = fs::read(&segments[1]).unwrap();
    let name = "00000001000000AA000000BB";

    // First push stores it; the same content again succeeds.
    run(&mut push(&[], &wal_file(name, &a))).ok("first push");
    let stored = object(&key(name, ".gz")).expect("object stored");
    run(&mut push(&[], &wal_file(name, &a))).ok("same content again");
    // Same content, another compression: still the same WAL, still fine, and no second copy.
    run(&mut push(&["--bzip2"], &wal_file(name, &a))).ok("same content, other codec");
    assert!(
        object(&key(name, ".bz2")).is_none(),
        "a second copy was uploaded"
    );

    // Different content: refused, archived object untouched.
    for flags in [&[][..], &["--xz"][..]] {
        let r = run(&mut push(flags, &wal_file(name, &b)));
        assert_eq!(r.code, 4, "different content accepted: {r:#?}");
        r.one_line_error("different content");
        assert!(
            object(&key(name, ".gz")).as_deref() == Some(&stored[..]),
            "archived object changed"
        );
        assert!(object(&key(name, ".xz")).is_none());
    }

    // History files are never overwritten.
    let history = "0000000A.history";
    run(&mut push(
        &[],
        &wal_file(history, b"1\t0/3000000\tno recovery target specified\n"),
    ))
    .ok("history");
    let r = run(&mut push(
        &[],
        &wal_file(history, b"1\t0/4000000\tdifferent\n"),
    ));
    assert_eq!(r.code, 4, "history overwritten: {r:#?}");
    let kept = object(&key(history, ".gz")).expect("history stored");
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&kept[..]), &mut plain).unwrap();
    assert_eq!(plain, b"1\t0/3000000\tno recovery target specified\n");
    run(&mut push(
        &[],
        &wal_file(history, b"1\t0/3000000\tno recovery target specified\n"),
    ))
    .ok("same history");
}

fn s3_rules(kind: S3Kind, extra_env: &[(&str, &str)]) {
    let archive = Archive::new(kind, "dup");
    let push = |flags: &[&str], path: &Path| {
        let mut cmd = archive.barnacle("walpush", flags);
        cmd.arg(path).envs(extra_env.iter().copied());
        cmd
    };
    let object = |key: &str| {
        archive
            .keys()
            .contains(&key.to_string())
            .then(|| archive.s3.get_object(&archive.bucket, key))
    };
    let key = |name: &str, suffix: &str| archive.wal_key(name, suffix);
    check_rules(&push, &object, &key);
}

#[test]
fn duplicate_rules_on_s3_with_conditional_writes() {
    s3_rules(S3Kind::SeaweedHttp, &[]);
}

#[test]
fn duplicate_rules_on_s3_without_conditional_writes() {
    s3_rules(S3Kind::SeaweedHttp, &[("AWS_CONDITIONAL_PUT", "disabled")]);
}

#[test]
fn duplicate_rules_on_ceph_rgw() {
    s3_rules(S3Kind::CephHttp, &[]);
}

#[test]
fn duplicate_rules_on_the_local_store() {
    let root = harness::scratch("dup-local");
    let url = format!("file://{}", root.display());
    let push = |flags: &[&str], path: &Path| {
        let mut cmd = harness::barnacle("walpush");
        cmd.args(flags).arg(&url).arg("pg").arg(path);
        cmd
    };
    let object = |key: &str| fs::read(root.join(key)).ok();
    let key = |name: &str, suffix: &str| {
        let hash = if name.ends_with(".history") {
            String::new()
        } else {
            format!("{}/", &name[..16])
        };
        format!("pg/wals/{hash}{name}{suffix}")
    };
    check_rules(&push, &object, &key);
}

#[test]
fn a_copy_pushed_by_barman_counts_as_archived() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "dupbarman");
    let segments = real_wal();
    let name = file_name(&segments[2]);
    run(archive
        .barman("barman-cloud-wal-archive", &["--bzip2"])
        .arg(&segments[2]))
    .ok("barman push");
    // No checksum metadata on Barman's object: barnacle downloads and compares.
    run(archive.barnacle("walpush", &[]).arg(&segments[2])).ok("walpush of the same content");
    assert!(!archive.keys().contains(&archive.wal_key(&name, ".gz")));
    let other = wal_file(&name, &fs::read(&segments[3]).unwrap());
    let r = run(archive.barnacle("walpush", &[]).arg(&other));
    assert_eq!(r.code, 4, "{r:#?}");
    r.one_line_error("different content");
}

#[test]
fn a_repeated_push_does_not_upload_again() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "dupnoupload");
    let segment = &real_wal()[4];
    let name = file_name(segment);
    run(archive.barnacle("walpush", &[]).arg(segment)).ok("first push");
    // Replace the object by the same bytes plus a marker in its metadata: a
    // second upload would drop the marker.
    let key = archive.wal_key(&name, ".gz");
    let body = archive.s3.get_object(&archive.bucket, &key);
    let digest = barnacle::codec::blake3_hex(&fs::read(segment).unwrap());
    assert_eq!(
        archive
            .s3
            .head_metadata(&archive.bucket, &key)
            .get("barnacle-blake3"),
        Some(&digest),
        "the push records the BLAKE3 of the content"
    );
    archive.s3.put_object_with_metadata(
        &archive.bucket,
        &key,
        &body,
        &[("barnacle-blake3", &digest), ("marker", "kept")],
    );
    run(archive.barnacle("walpush", &[]).arg(segment)).ok("second push");
    let meta = archive.s3.head_metadata(&archive.bucket, &key);
    assert_eq!(
        meta.get("marker").map(String::as_str),
        Some("kept"),
        "object was uploaded again: {meta:?}"
    );
}

/// Objects pushed by builds before BLAKE3 carry only `barnacle-sha256`: a push
/// of the same content compares SHA-256s and succeeds without uploading, a
/// push of other content is refused naming SHA-256, and a restore checks the
/// SHA-256 (a wrong one fails, the right one restores).
#[test]
fn an_object_an_earlier_build_recorded_with_sha256_still_counts() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "dupsha256");
    let segments = real_wal();
    let segment = &segments[5];
    let name = file_name(segment);
    let content = fs::read(segment).unwrap();
    run(archive.barnacle("walpush", &[]).arg(segment)).ok("first push");
    let key = archive.wal_key(&name, ".gz");
    let body = archive.s3.get_object(&archive.bucket, &key);
    let sha256 = barnacle::codec::sha256_hex(&content);
    let as_an_earlier_build = |digest: &str| {
        archive.s3.put_object_with_metadata(
            &archive.bucket,
            &key,
            &body,
            &[("barnacle-sha256", digest), ("marker", "kept")],
        )
    };
    as_an_earlier_build(&sha256);

    run(archive.barnacle("walpush", &[]).arg(segment)).ok("same content");
    let meta = archive.s3.head_metadata(&archive.bucket, &key);
    assert_eq!(
        (
            meta.get("marker").map(String::as_str),
            meta.get("barnacle-blake3")
        ),
        (Some("kept"), None),
        "object was uploaded again: {meta:?}"
    );
    let other = wal_file(&name, &fs::read(&segments[6]).unwrap());
    let r = run(archive.barnacle("walpush", &[]).arg(&other));
    assert_eq!(r.code, 4, "{r:#?}");
    r.one_line_error(&format!("archived SHA-256 {sha256}"));
    assert_eq!(archive.s3.get_object(&archive.bucket, &key), body);

    let dest = harness::scratch("dupsha256-restore");
    run(archive
        .barnacle("restore", &[])
        .arg(&name)
        .arg(dest.join("ok")))
    .ok("restore checked with SHA-256");
    assert!(fs::read(dest.join("ok")).unwrap() == content);
    as_an_earlier_build(&barnacle::codec::sha256_hex(b"other"));
    let r = run(archive
        .barnacle("restore", &[])
        .arg(&name)
        .arg(dest.join("bad")));
    assert_eq!(r.code, 4, "{r:#?}");
    r.one_line_error("checksum mismatch: the content's SHA-256");
    assert!(!dest.join("bad").exists());
}

#[test]
fn concurrent_pushes_of_different_content_let_exactly_one_win() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "dupconcurrent");
    let segments = real_wal();
    let name = "00000001000000CC000000DD";
    let a = wal_file(name, &fs::read(&segments[0]).unwrap());
    let b = wal_file(name, &fs::read(&segments[1]).unwrap());
    let children: Vec<_> = (0..8)
        .map(|i| {
            let path = if i % 2 == 0 { &a } else { &b };
            archive
                .barnacle("walpush", &[])
                .arg(path)
                .spawn()
                .expect("spawn walpush")
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| {
            c.wait_with_output()
                .expect("wait")
                .status
                .code()
                .unwrap_or(-1)
        })
        .collect();
    let (even_ok, odd_ok) = (
        codes.iter().step_by(2).all(|c| *c == 0),
        codes.iter().skip(1).step_by(2).all(|c| *c == 0),
    );
    assert!(codes.iter().all(|c| *c == 0 || *c == 4), "{codes:?}");
    assert!(even_ok ^ odd_ok, "exactly one content must win: {codes:?}");
    let stored = archive
        .s3
        .get_object(&archive.bucket, &archive.wal_key(name, ".gz"));
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut plain).unwrap();
    let winner = if even_ok { &a } else { &b };
    assert!(
        plain == fs::read(winner).unwrap(),
        "stored content is not the winner's"
    );
}
