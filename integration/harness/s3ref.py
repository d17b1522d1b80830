"""Reference S3 client for barnacle's integration tests (boto3, independent of barnacle).

Usage: s3ref.py ENDPOINT   (credentials, region and CA bundle from the usual AWS_* variables)

Serves requests on stdin until EOF, so that a test pays Python's start-up once. A request is a
line of space-separated byte lengths, then the fields themselves: the operation, its arguments,
and for `put` the body. The answer is `ok LEN\\n` or `err LEN\\n`, then LEN bytes.

  create-bucket BUCKET
  list BUCKET PREFIX                -> one key per line, sorted
  get BUCKET KEY                    -> the object's bytes
  put BUCKET KEY BODY [NAME=VALUE]  (user metadata)
  delete BUCKET KEY
  head-meta BUCKET KEY              -> "name<TAB>value" per user metadata entry, sorted
  uploads BUCKET PREFIX             -> "key<TAB>upload-id" per incomplete multipart upload
"""

import os
import sys

import boto3
from botocore.config import Config


def run(s3, op, bucket, *args):
    if op == "create-bucket":
        s3.create_bucket(Bucket=bucket)
        return b""
    if op == "list":
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args[0].decode()):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return "".join(k + "\n" for k in sorted(keys)).encode()
    if op == "uploads":
        found = []
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=args[0].decode()):
            found.extend(f"{u['Key']}\t{u['UploadId']}\n" for u in page.get("Uploads", []))
        return "".join(sorted(found)).encode()
    key = args[0].decode()
    if op == "get":
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if op == "put":
        meta = dict(kv.decode().split("=", 1) for kv in args[2:])
        s3.put_object(Bucket=bucket, Key=key, Body=args[1], Metadata=meta)
        return b""
    if op == "delete":
        s3.delete_object(Bucket=bucket, Key=key)
        return b""
    if op == "head-meta":
        meta = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
        return "".join(f"{k}\t{v}\n" for k, v in sorted(meta.items())).encode()
    raise ValueError(f"unknown operation {op!r}")


def main(endpoint):
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while line := inp.readline():
        fields = [inp.read(int(n)) for n in line.split()]
        try:
            status, answer = b"ok", run(s3, fields[0].decode(), fields[1].decode(), *fields[2:])
        except Exception as e:  # noqa: BLE001 - every failure goes back to the test
            status, answer = b"err", f"{type(e).__name__}: {e}".encode()
        out.write(b"%s %d\n" % (status, len(answer)) + answer)
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
