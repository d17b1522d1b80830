#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the repository's own fixtures.

Run from fuzz/: python3 make_corpus.py. Inputs are real: WAL names as PostgreSQL writes them,
backup.info files Barman 3.19 wrote (src/layout/testdata, src/catalog/testdata), Python literals
checked against CPython (src/layout/testdata/pyliteral_cases.tsv, every third), the policies the
retention tests use, and tars Python's tarfile wrote (src/backup/testdata, as Barman's restore
reads them) under each codec barnacle decodes (snappy has no command-line encoder here: the
fuzzer reaches it from the others). The first byte of a restore_tar input picks the codec:
0 none, 1 gzip, 2 bzip2, 3 snappy, 4 lz4, 5 xz, 6 zstd (fuzz_targets/restore_tar.rs).
"""
import bz2, glob, gzip, hashlib, lzma, os, shutil, subprocess

def put(target, data, name=None):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(f"corpus/{target}", exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)

shutil.rmtree("corpus", ignore_errors=True)
for i, n in enumerate([
    "000000010000000000000001", "000000010000000000000004.partial",
    "000000010000000000000004.00000028.backup", "00000002.history", "0000000A000000FF000000FE",
    "pg_wal/000000030000001200000034", "00000001000000000000000a", "ffffffffffffffffffffffff",
    "000000010000000000000001.gz", "00000001.history.partial",
    "000000010000000000000001.0000002.backup", "/var/lib/postgresql/15/main/pg_wal/00000001.history",
]):
    put("wal_name", n, f"seed{i:02}")

infos = sorted(glob.glob("../src/layout/testdata/backup_info/*"))
infos += sorted(glob.glob("../src/catalog/testdata/**/backup.info", recursive=True))
for f in infos:
    with open(f, "rb") as fh:
        put("backup_info", fh.read())
with open("../src/layout/testdata/pyliteral_cases.tsv", encoding="utf-8") as fh:
    for i, line in enumerate(fh):
        literal = line.rstrip("\n").split("\t")[0]
        if literal and i % 3 == 0:
            put("backup_info", literal)

for i, p in enumerate([
    "REDUNDANCY 3", "REDUNDANCY \u0663", "RECOVERY WINDOW OF 30 DAYS",
    "RECOVERY WINDOW OF 1 WEE\u212a\u017f", "RECOVERY W\u0131NDOW OF 3 MONTH",
    "RECOVERY WINDOW OF 0 DAYS", "30d", "4w", "3m", "  redundancy   2  ",
    "RECOVERY WINDOW OF 1000000000 DAYS", "RECOVERY WINDOW OF 400000000 WEEKS",
    "RECOVERY WINDOW OF 32258064 MONTHS", "recovery window of 7 day", "REDUNDANCY -1",
    "RECOVERY WINDOW OF 1 YEAR",
]):
    put("retention_policy", p, f"seed{i:02}")

for tar in ["../src/backup/testdata/python_gnu.tar", "../src/backup/testdata/python_pax.tar"]:
    with open(tar, "rb") as fh:
        raw = fh.read()
    base = os.path.basename(tar)[:-4]
    put("restore_tar", b"\x00" + raw, base + ".tar")
    put("restore_tar", b"\x01" + gzip.compress(raw, 6), base + ".tar.gz")
    put("restore_tar", b"\x02" + bz2.compress(raw), base + ".tar.bz2")
    put("restore_tar", b"\x05" + lzma.compress(raw), base + ".tar.xz")
    for codec, suffix, cmd in [(4, "lz4", ["lz4", "-c"]), (6, "zst", ["zstd", "-c"])]:
        out = subprocess.run(cmd, input=raw, capture_output=True, check=True).stdout
        put("restore_tar", bytes([codec]) + out, f"{base}.tar.{suffix}")
