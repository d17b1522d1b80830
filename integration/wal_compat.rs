//! Byte compatibility with Barman 3.19, both ways, for each of the six WAL
//! compressions: what `barman-cloud-wal-archive` pushes, barnacle's `restore`
//! restores byte-identical, and what `walpush` pushes,
//! `barman-cloud-wal-restore` restores byte-identical. Over HTTPS to SeaweedFS.
//! gzip both at walpush's default level (one member, zlib-rs) and at Barman's
//! medium level 6 (a member per 256 KiB block, libdeflate).

use std::fs;

use crate::harness::{self, S3Kind};
use crate::support::{Archive, file_name, real_wal, run};

fn round_trip_both_ways(flag: &str, suffix: &str, segment_index: usize) {
    let flags: Vec<&str> = if flag.is_empty() { vec![] } else { vec![flag] };
    round_trip_with(&flags, suffix, segment_index, "");
}

/// [`round_trip_both_ways`] with any flags; `bucket_tag` keeps buckets apart.
/// Returns the object walpush wrote.
fn round_trip_with(
    flags: &[&str],
    suffix: &str,
    segment_index: usize,
    bucket_tag: &str,
) -> Vec<u8> {
    let flag = flags.join(" ");
    let archive = Archive::new(
        S3Kind::SeaweedHttps,
        &format!("compat{}{bucket_tag}", suffix.trim_start_matches('.')),
    );
    let segments = real_wal();
    let out = harness::scratch("compat-out");

    // Barman pushes, barnacle restores.
    let from_barman = &segments[segment_index % segments.len()];
    let name = file_name(from_barman);
    run(archive
        .barman("barman-cloud-wal-archive", flags)
        .arg(from_barman))
    .ok("barman-cloud-wal-archive");
    assert!(
        archive.keys().contains(&archive.wal_key(&name, suffix)),
        "{:?}",
        archive.keys()
    );
    let dest = out.join("restored-by-barnacle");
    run(archive.barnacle("restore", &[]).arg(&name).arg(&dest)).ok("barnacle restore");
    assert!(
        fs::read(&dest).unwrap() == fs::read(from_barman).unwrap(),
        "{name} {flag}: content differs"
    );

    // barnacle pushes, Barman restores.
    let from_barnacle = &segments[(segment_index + 1) % segments.len()];
    let name = file_name(from_barnacle);
    run(archive.barnacle("walpush", flags).arg(from_barnacle)).ok("walpush");
    let expected_suffix = if flags.is_empty() { ".gz" } else { suffix };
    assert!(
        archive
            .keys()
            .contains(&archive.wal_key(&name, expected_suffix)),
        "{:?}",
        archive.keys()
    );
    let dest = out.join("restored-by-barman");
    run(archive
        .barman("barman-cloud-wal-restore", &[])
        .arg(&name)
        .arg(&dest))
    .ok("barman-cloud-wal-restore");
    assert!(
        fs::read(&dest).unwrap() == fs::read(from_barnacle).unwrap(),
        "{name} {flag}: content differs"
    );
    archive
        .s3
        .get_object(&archive.bucket, &archive.wal_key(&name, expected_suffix))
}

#[test]
fn gzip_both_ways() {
    round_trip_both_ways("--gzip", ".gz", 0);
}

#[test]
fn gzip_level_6_both_ways_a_member_per_block() {
    let object = round_trip_with(&["--gzip", "--compression-level", "6"], ".gz", 6, "l6");
    // What Barman restored above was a series of gzip members, one per
    // 256 KiB block: the first member holds only the first block.
    let mut first = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&object[..]), &mut first).unwrap();
    assert_eq!(first.len(), 256 * 1024, "not a member per block");
}

#[test]
fn bzip2_both_ways() {
    round_trip_both_ways("--bzip2", ".bz2", 1);
}

#[test]
fn xz_both_ways() {
    round_trip_both_ways("--xz", ".xz", 2);
}

#[test]
fn snappy_both_ways() {
    round_trip_both_ways("--snappy", ".snappy", 3);
}

#[test]
fn zstd_both_ways() {
    round_trip_both_ways("--zstd", ".zst", 4);
}

#[test]
fn lz4_both_ways() {
    round_trip_both_ways("--lz4", ".lz4", 5);
}

#[test]
fn walpush_default_is_gzip_and_barman_name_default_is_uncompressed() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "defaults");
    let segments = real_wal();
    run(archive.barnacle("walpush", &[]).arg(&segments[0])).ok("walpush");
    run(archive
        .barnacle("barman-cloud-wal-archive", &[])
        .arg(&segments[1]))
    .ok("barman-cloud-wal-archive (barnacle)");
    let keys = archive.keys();
    assert!(
        keys.contains(&archive.wal_key(&file_name(&segments[0]), ".gz")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&archive.wal_key(&file_name(&segments[1]), "")),
        "{keys:?}"
    );
    // The uncompressed object is the file itself.
    let raw = archive.s3.get_object(
        &archive.bucket,
        &archive.wal_key(&file_name(&segments[1]), ""),
    );
    assert!(raw == fs::read(&segments[1]).unwrap());
    // And it carries the content digest.
    let meta = archive.s3.head_metadata(
        &archive.bucket,
        &archive.wal_key(&file_name(&segments[1]), ""),
    );
    assert_eq!(
        meta.get("barnacle-blake3").map(String::len),
        Some(64),
        "{meta:?}"
    );
}
