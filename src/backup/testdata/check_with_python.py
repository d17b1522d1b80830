"""Dev-time check of barnacle's tar writer against Barman 3.19.1 itself.

  BARNACLE_PGDATA=/some/pgdata /opt/bt/venv/bin/python check_with_python.py [max_bytes]

1. runs Barman's own CloudUploadController / CloudBackupUploader code
   (uncompressed, with a fake cloud interface that keeps the parts),
2. runs barnacle's writer (the ignored test dev_write_archives_for_python)
   with every part codec,
3. compares: single-part uncompressed output must be byte-identical to
   Barman's; every compressed part must be readable by the streaming readers
   Barman's restore uses (tarfile r|gz, r|bz2, r| with barman's lz4/snappy
   chunked decompressors) and yield the same members in the same order.
"""
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from types import SimpleNamespace

from barman.cloud import CloudBackupUploader, CloudUploadController, DecompressingStreamingIO
from barman.clients import cloud_compression

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))
LABEL = b"LABEL: barnacle\n"


class FakeCloud:
    MAX_ARCHIVE_SIZE = 1 << 40
    MAX_CHUNKS_PER_FILE = 10000
    MIN_CHUNK_SIZE = 5 << 20
    worker_processes_count = 1
    path = ""

    def __init__(self):
        self.objects = {}

    def create_multipart_upload(self, key):
        self.objects[key] = b""
        return {"UploadId": key}  # truthy: Barman creates it once per tar

    def async_upload_part(self, upload_metadata, key, body, part_number):
        body.seek(0)
        self.objects[key] += body.read()

    def async_complete_multipart_upload(self, upload_metadata, key, parts_count):
        pass

    def wait_for_multipart_upload(self, key):
        return {}


def barman_archive(pgdata, extra, max_size):
    cloud = FakeCloud()
    ctrl = CloudUploadController(cloud, "p", max_size, None)
    up = CloudBackupUploader.__new__(CloudBackupUploader)
    info = SimpleNamespace(tablespaces=[], pgdata=pgdata)
    up._backup_data_files(ctrl, info, pgdata, "15")
    ctrl.add_file("config_file", extra, "data", os.path.basename(extra))
    st = os.stat(pgdata)
    ctrl.add_fileobj("backup_label", io.BytesIO(LABEL), "data", "backup_label",
                     uid=st.st_uid, gid=st.st_gid)
    ctrl.close()
    return [cloud.objects[k] for k in sorted(cloud.objects)]


def stream_names(raw, codec):
    if codec in ("lz4", "snappy"):
        fileobj = DecompressingStreamingIO(io.BytesIO(raw), cloud_compression.get_compressor(codec))
        mode = "r|"
    else:
        fileobj = io.BytesIO(raw)
        mode = {"none": "r|", "gz": "r|gz", "bz2": "r|bz2"}[codec]
    names = []
    with tarfile.open(fileobj=fileobj, mode=mode) as tf:
        for m in tf:
            names.append(m.name)
            if m.isreg():
                tf.extractfile(m).read()
    return names


def main():
    pgdata = os.environ["BARNACLE_PGDATA"]
    max_size = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 40
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        extra = os.path.join(tmp, "pg_ident_outside.conf")
        with open(extra, "w") as f:
            f.write("# ident\n")
        ref = barman_archive(pgdata, extra, max_size)
        env = dict(os.environ, BARNACLE_OUT=tmp, BARNACLE_MAX=str(max_size), BARNACLE_EXTRA=extra)
        subprocess.run(
            ["cargo", "test", "--lib", "-q", "dev_write_archives_for_python", "--", "--ignored"],
            cwd=os.environ.get("BARNACLE_REPO", REPO), env=env, check=True,
        )
        ref_names = [n for p in ref for n in stream_names(p, "none")]
        print(f"barman: {len(ref)} part(s), {len(ref_names)} members")
        for codec in ["none", "gz", "bz2", "lz4", "snappy"]:
            d = os.path.join(tmp, codec)
            parts = [open(os.path.join(d, p), "rb").read() for p in sorted(os.listdir(d))]
            names = [n for p in parts for n in stream_names(p, codec)]
            same = names == ref_names
            ok &= same
            print(f"{codec:7} {len(parts)} part(s), {sum(map(len, parts))} bytes, members match barman: {same}")
            if not same:
                print("  only barman:", sorted(set(ref_names) - set(names))[:10])
                print("  only barnacle:", sorted(set(names) - set(ref_names))[:10])
            if codec == "none" and len(ref) == 1 and len(parts) == 1:
                ident = parts[0] == ref[0]
                ok &= ident
                print(f"        byte-identical to barman: {ident}")
                if not ident:
                    a, b = parts[0], ref[0]
                    i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
                    print(f"  first difference at {i} (block {i // 512}, offset {i % 512}); lens {len(a)} {len(b)}")
                    print("  barnacle:", a[i // 512 * 512: i // 512 * 512 + 512])
                    print("  barman:  ", b[i // 512 * 512: i // 512 * 512 + 512])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
