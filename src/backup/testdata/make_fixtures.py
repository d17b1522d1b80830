"""Makes the tar fixtures of src/backup (run with Python 3.11's tarfile, as
Barman uses it): python_pax.tar (PAX, like Barman's parts) and
python_gnu.tar (GNU long names), from in-memory members so that the output
does not depend on the machine."""
import io
import sys
import tarfile

LONG = "base/" + "d" * 60 + "/" + "f" * 70  # > 100 characters


def members():
    def member(name, kind=tarfile.REGTYPE, data=b"", mode=0o600, mtime=1700000000.25, link=""):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.mtime = mtime
        ti.uid, ti.gid, ti.uname, ti.gname = 26, 26, "postgres", "postgres"
        ti.linkname = link
        ti.size = len(data)
        return ti, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    yield member(".", tarfile.DIRTYPE, mode=0o700)
    yield member("./PG_VERSION", data=b"15\n")
    yield member("base", tarfile.DIRTYPE, mode=0o750, mtime=1600000000.5)
    yield member(LONG, data=b"long name\n" * 100, mode=0o640)
    yield member("caf\u00e9/\u00fcn\u00efcode.txt", data=b"utf-8 name\n")
    yield member("base/link_to_version", tarfile.SYMTYPE, link="../PG_VERSION", mode=0o777)
    yield member("base/hard", tarfile.LNKTYPE, link="./PG_VERSION")
    yield member("base/empty", data=b"", mtime=0)


def write(path, fmt):
    with tarfile.open(path, "w", format=fmt) as tf:
        for ti, data in members():
            tf.addfile(ti, data)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    write(out + "/python_pax.tar", tarfile.PAX_FORMAT)
    write(out + "/python_gnu.tar", tarfile.GNU_FORMAT)
