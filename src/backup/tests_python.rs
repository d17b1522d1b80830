//! Dev-time bridge to `testdata/check_with_python.py`, which compares
//! barnacle's archives with the ones Barman's own code writes and reads them
//! with Python's streaming `tarfile` readers.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::*;

/// Dev-time helper for `testdata/check_with_python.py`: writes the `data`
/// archive of `$BARNACLE_PGDATA` (plus `$BARNACLE_EXTRA`, a config file
/// outside it, and a fixed backup_label) into `$BARNACLE_OUT/<codec>/` for
/// every part codec, parts cut at `$BARNACLE_MAX` bytes.
#[test]
#[ignore = "run by testdata/check_with_python.py"]
fn dev_write_archives_for_python() {
    let var = |k: &str| std::env::var(k).unwrap();
    let pgdata = PathBuf::from(var("BARNACLE_PGDATA"));
    let out = PathBuf::from(var("BARNACLE_OUT"));
    let max: u64 = var("BARNACLE_MAX").parse().unwrap();
    let spec = PgdataTar {
        pgdata: pgdata.clone(),
        tablespaces: Vec::new(),
        extra_root_files: vec![ExtraFile {
            path: PathBuf::from(var("BARNACLE_EXTRA")),
            optional: false,
        }],
    };
    let gid = fs::metadata(&pgdata).unwrap().gid();
    for (c, ext) in [
        (None, ""),
        (Some(Compression::Gzip), ".gz"),
        (Some(Compression::Bzip2), ".bz2"),
        (Some(Compression::Lz4), ".lz4"),
        (Some(Compression::Snappy), ".snappy"),
    ] {
        let sink = EncodedParts::new(Vec::new(), c, StreamOptions::new(2)).unwrap();
        let mut tar = TarArchive::new(sink, max);
        write_pgdata_tar(&spec, &mut tar).unwrap();
        let parts = append_backup_label(tar, "LABEL: barnacle\n", gid)
            .unwrap()
            .finish()
            .unwrap();
        let dir = out.join(if ext.is_empty() { "none" } else { &ext[1..] });
        fs::create_dir_all(&dir).unwrap();
        for (i, p) in parts.iter().enumerate() {
            let n = if i == 0 {
                String::new()
            } else {
                format!("_{i:04}")
            };
            fs::write(dir.join(format!("data{n}.tar{ext}")), p).unwrap();
        }
    }
}
