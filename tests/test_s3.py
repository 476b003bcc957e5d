"""The bundled S3 server (src/s3d/): the tools people have, pointed at it, and bad input.

* The ready line and the ready file name the S3 URL, bucket and key pair; the pair is kept in
  DATA/s3/_credentials (0600) and survives a restart, as do the objects; --s3-port -1 disables the
  server; keys can be given.
* Debian's clients each create a bucket, put and get a 20 MB object (multipart where the tool uses
  it), list and delete: `aws s3` / `aws s3api` (SigV4, path style), boto3 (listing V1 and V2 with
  pagination and delimiters, ranges, copies, multi-delete, multipart with >5 MiB parts, presigned
  URLs V4 and V2), s3cmd (SigV2 and SigV4) and libs3's `s3` tool (SigV2).
* aws-chunked uploads with chunk signatures computed here (and a tampered chunk refused), and
  unsigned chunks with a CRC32C trailer.
* Refusals: wrong secret (SignatureDoesNotMatch), unknown key (InvalidAccessKeyId), anonymous,
  expired presigned URLs, payload hashes that do not match, bad Range (416), missing bucket or key
  (404), bad XML, unknown operations, traversal in keys, huge headers, garbage and truncated
  requests over a raw socket, a lying Content-Length: each answered with an S3 error (or a close),
  nothing partial ever visible, and the process lives on.
* S3 traffic runs on its own thread: a stalled upload and an unread download do not delay Kafka
  requests.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

import kwire
from conftest import shared_cluster
from cluster import Cluster

boto3 = pytest.importorskip("boto3")
import botocore  # noqa: E402
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

S3_RE = re.compile(r" s3 (http://\S+) bucket (\S+) key (\S+) secret (\S+)")
AWS = "/usr/bin/aws" if os.path.exists("/usr/bin/aws") else shutil.which("aws")
S3CMD = shutil.which("s3cmd")
LIBS3 = "/usr/bin/s3" if os.path.exists("/usr/bin/s3") else None
TOOL_TIMEOUT = 120
MB20 = 20 * 1000 * 1000


def s3_of(mk):
    """{url, host, port, bucket, key, secret} from the ready line."""
    m = S3_RE.search(mk.ready_line or "")
    assert m, "the ready line names no S3 server: %r" % mk.ready_line
    url = m.group(1)
    host, port = url[len("http://"):].rsplit(":", 1)
    return {"url": url, "host": host, "port": int(port), "bucket": m.group(2), "key": m.group(3),
            "secret": m.group(4)}


@pytest.fixture(scope="module")
def s3_cluster(request):
    with Cluster("--brokers", "1", name=request.module.__name__) as mk:
        yield mk


@pytest.fixture
def mk(s3_cluster, request):
    yield from shared_cluster(s3_cluster, request)


@pytest.fixture
def s3(mk):
    return s3_of(mk)


def client(s3, key=None, secret=None, sig="s3v4"):
    return boto3.client("s3", endpoint_url=s3["url"], aws_access_key_id=key or s3["key"],
                        aws_secret_access_key=secret or s3["secret"], region_name="us-east-1",
                        config=Config(signature_version=sig, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 0}, connect_timeout=10, read_timeout=60))


def err_code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def new_bucket(c, name):
    c.create_bucket(Bucket=name)
    return name


def big_file(tmp_path, name="big.bin", size=MB20):
    p = tmp_path / name
    p.write_bytes(os.urandom(size))
    return p


# ---------------------------------------------------------------------------------------------
# raw HTTP
# ---------------------------------------------------------------------------------------------
def raw(s3, data, timeout=10, close_write=False):
    """Send bytes, return what came back until the server closed or went quiet (bounded)."""
    with socket.create_connection((s3["host"], s3["port"]), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if close_write:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not close_write and b"\r\n\r\n" in out and response_complete(out):
                break
        return out


def response_complete(out):
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else None


def code_of(resp):
    m = re.search(rb"<Code>([^<]*)</Code>", resp)
    return m.group(1).decode() if m else None


class KeepPayloadSigner(S3SigV4Auth):
    """botocore's S3 signer, except that an x-amz-content-sha256 given by the test is kept (and
    signed) instead of being replaced by the body's real hash."""

    def _modify_request_before_signing(self, request):
        keep = request.headers.get("X-Amz-Content-SHA256")
        super()._modify_request_before_signing(request)
        if keep is not None:
            del request.headers["X-Amz-Content-SHA256"]
            request.headers["X-Amz-Content-SHA256"] = keep


def signed(s3, method, path, headers=None, body=b"", payload=None, secret=None):
    """A V4-signed request as bytes (botocore's signer), path style."""
    headers = dict(headers or {})
    if payload is not None:
        headers["X-Amz-Content-SHA256"] = payload
    req = AWSRequest(method, s3["url"] + path, data=body, headers=headers)
    KeepPayloadSigner(Credentials(s3["key"], secret or s3["secret"]), "s3", "us-east-1").add_auth(req)
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (s3["host"], s3["port"])]
    if "Content-Length" not in req.headers:
        lines.append("Content-Length: %d" % len(body))
    lines += ["%s: %s" % (k, v) for k, v in req.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, req


def assert_works(s3):
    """The server still answers a normal request."""
    assert client(s3).head_bucket(Bucket=s3["bucket"])["ResponseMetadata"]["HTTPStatusCode"] == 200


# ---------------------------------------------------------------------------------------------
# ready line, ready file, keys, persistence
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_ready_line_file_keys_and_restart(minikora, tmp_path):
    rf = tmp_path / "ready.json"
    data = tmp_path / "data"
    m = minikora("--brokers", "1", "--ready-file", rf, data_dir=data, ephemeral=False)
    s3 = s3_of(m)
    info = json.loads(rf.read_text())["s3"]
    assert info == {"url": s3["url"], "access_key": s3["key"], "secret_key": s3["secret"],
                    "bucket": "minikora", "region": "us-east-1"}
    assert re.fullmatch(r"MK[A-Z0-9]{18}", s3["key"]) and len(s3["secret"]) == 40
    # the ready line keeps its shape: admin URL one word, TLS part last
    assert re.search(r" admin http://\S+ s3 http://", m.ready_line) and " tls " in m.ready_line.split(" s3 ")[1]
    cred = data / "s3" / "_credentials"
    assert cred.read_text() == "access_key=%s\nsecret_key=%s\n" % (s3["key"], s3["secret"])
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    c = client(s3)
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["minikora"]
    c.put_object(Bucket="minikora", Key="kept/one", Body=b"survives", Metadata={"who": "me"})
    m.stop()
    # a restart keeps the keys, the bucket and the object with its metadata
    m = minikora("--brokers", "1", "--ready-file", rf, data_dir=data, ephemeral=False)
    s3b = s3_of(m)
    assert (s3b["key"], s3b["secret"]) == (s3["key"], s3["secret"])
    o = client(s3b).get_object(Bucket="minikora", Key="kept/one")
    assert o["Body"].read() == b"survives" and o["Metadata"] == {"who": "me"}
    m.stop()
    # keys given on the command line replace them (and are kept)
    m = minikora("--brokers", "1", "--s3-access-key", "GIVENKEY123", "--s3-secret-key", "given-secret-0",
                 data_dir=data, ephemeral=False)
    s3c = s3_of(m)
    assert (s3c["key"], s3c["secret"]) == ("GIVENKEY123", "given-secret-0")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(s3c, key=s3["key"], secret=s3["secret"]).list_buckets()
    assert err_code(e) == ("InvalidAccessKeyId", 403)
    assert client(s3c).get_object(Bucket="minikora", Key="kept/one")["Body"].read() == b"survives"
    m.stop()
    assert "GIVENKEY123" in cred.read_text()


@pytest.mark.timeout(60)
def test_s3_port_minus_one_and_bad_flags(minikora, tmp_path):
    rf = tmp_path / "ready.json"
    m = minikora("--brokers", "1", "--s3-port", "-1", "--ready-file", rf)
    assert " s3 " not in m.ready_line
    assert json.loads(rf.read_text())["s3"] is None
    m.stop()
    for args in (["--s3-port", "x"], ["--s3-access-key", "ONLYKEY"], ["--s3-access-key", "bad key",
                 "--s3-secret-key", "secret-123"], ["--s3-access-key", "KEY", "--s3-secret-key", "short"]):
        p = subprocess.run([str(Cluster().argv()[0]), "serve", "--ephemeral", "--port", "0"] + args,
                           capture_output=True, timeout=30)
        assert p.returncode == 2, (args, p.stderr)


# ---------------------------------------------------------------------------------------------
# awscli
# ---------------------------------------------------------------------------------------------
def aws(s3, tmp_path, *args, check=True):
    cfg = tmp_path / "aws-config"
    if not cfg.exists():
        cfg.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    env = dict(os.environ, AWS_CONFIG_FILE=str(cfg), AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_ACCESS_KEY_ID=s3["key"], AWS_SECRET_ACCESS_KEY=s3["secret"], AWS_PAGER="",
               AWS_EC2_METADATA_DISABLED="true")
    p = subprocess.run([AWS, "--endpoint-url", s3["url"]] + list(args), env=env, capture_output=True,
                       timeout=TOOL_TIMEOUT)
    if check:
        assert p.returncode == 0, (args, p.stdout[-2000:], p.stderr[-2000:])
    return p


@pytest.mark.skipif(not AWS, reason="awscli is not installed")
@pytest.mark.timeout(240)
def test_awscli(s3, tmp_path):
    src = big_file(tmp_path)
    aws(s3, tmp_path, "s3", "mb", "s3://awscli")
    assert "awscli" in aws(s3, tmp_path, "s3", "ls").stdout.decode()
    aws(s3, tmp_path, "s3", "cp", "--no-progress", str(src), "s3://awscli/dir/big.bin")
    head = json.loads(aws(s3, tmp_path, "s3api", "head-object", "--bucket", "awscli", "--key", "dir/big.bin").stdout)
    assert head["ContentLength"] == MB20
    assert re.fullmatch(r'"[0-9a-f]{32}-\d+"', head["ETag"]), "awscli uploads 20 MB in parts: %r" % head
    listing = aws(s3, tmp_path, "s3", "ls", "--recursive", "s3://awscli").stdout.decode()
    assert re.search(r"\b%d dir/big\.bin" % MB20, listing), listing
    dst = tmp_path / "back.bin"
    aws(s3, tmp_path, "s3", "cp", "--no-progress", "s3://awscli/dir/big.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    # s3api: a small put with metadata, list-objects-v2 with a delimiter, a ranged get
    small = tmp_path / "small.txt"
    small.write_bytes(b"0123456789")
    aws(s3, tmp_path, "s3api", "put-object", "--bucket", "awscli", "--key", "s p a c e/x+y.txt", "--body", str(small),
        "--content-type", "text/plain", "--metadata", "k=v")
    lv2 = json.loads(aws(s3, tmp_path, "s3api", "list-objects-v2", "--bucket", "awscli", "--delimiter", "/").stdout)
    assert sorted(p["Prefix"] for p in lv2["CommonPrefixes"]) == ["dir/", "s p a c e/"]
    out = tmp_path / "range.txt"
    r = json.loads(aws(s3, tmp_path, "s3api", "get-object", "--bucket", "awscli", "--key", "s p a c e/x+y.txt",
                       "--range", "bytes=2-4", str(out)).stdout)
    assert out.read_bytes() == b"234" and r["ContentRange"] == "bytes 2-4/10" and r["Metadata"] == {"k": "v"}
    # a presigned URL from awscli, fetched without credentials
    url = aws(s3, tmp_path, "s3", "presign", "s3://awscli/s p a c e/x+y.txt", "--expires-in", "60").stdout.decode()
    assert urllib.request.urlopen(url.strip(), timeout=10).read() == b"0123456789"
    # refusals come back as S3 errors
    p = aws(s3, tmp_path, "s3api", "head-object", "--bucket", "awscli", "--key", "nope", check=False)
    assert p.returncode != 0 and b"404" in p.stderr
    p = aws(s3, tmp_path, "s3", "rb", "s3://awscli", check=False)
    assert p.returncode != 0 and b"BucketNotEmpty" in p.stderr
    aws(s3, tmp_path, "s3", "rm", "--recursive", "s3://awscli")
    aws(s3, tmp_path, "s3", "rb", "s3://awscli")
    assert "awscli" not in aws(s3, tmp_path, "s3", "ls").stdout.decode()


# ---------------------------------------------------------------------------------------------
# boto3
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_boto3_objects_and_listings(s3):
    c = client(s3)
    b = new_bucket(c, "boto-list")
    keys = sorted(["k%02d" % i for i in range(13)] + ["d%d/x/%d" % (i % 4, i) for i in range(10)])
    for k in keys:
        c.put_object(Bucket=b, Key=k, Body=k.encode())
    # V2, paginated
    pages = list(c.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 5}))
    assert len(pages) == 5 and [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert pages[0]["IsTruncated"] and pages[0]["KeyCount"] == 5 and not pages[-1]["IsTruncated"]
    # V2 with a delimiter: common prefixes count towards the page
    r = c.list_objects_v2(Bucket=b, Delimiter="/", MaxKeys=3)
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d0/", "d1/", "d2/"] and r["IsTruncated"]
    r2 = c.list_objects_v2(Bucket=b, Delimiter="/", ContinuationToken=r["NextContinuationToken"])
    assert [p["Prefix"] for p in r2["CommonPrefixes"]] == ["d3/"] and len(r2["Contents"]) == 13
    r = c.list_objects_v2(Bucket=b, Prefix="d1/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d1/x/"] and "Contents" not in r
    r = c.list_objects_v2(Bucket=b, StartAfter="k10")
    assert [o["Key"] for o in r["Contents"]] == ["k11", "k12"]
    # V1 with marker and a delimiter, paginated by NextMarker
    cps = [p["Prefix"] for page in c.get_paginator("list_objects").paginate(
        Bucket=b, Delimiter="/", PaginationConfig={"PageSize": 2}) for p in page.get("CommonPrefixes", [])]
    assert cps == ["d0/", "d1/", "d2/", "d3/"]
    r = c.list_objects(Bucket=b, Marker="k05", MaxKeys=3)
    assert [o["Key"] for o in r["Contents"]] == ["k06", "k07", "k08"] and r["IsTruncated"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.list_objects_v2(Bucket=b, MaxKeys=-1)
    assert err_code(e)[1] == 400

    # get, head, metadata, a key that needs escaping everywhere
    weird = "we ird/ké y+%&<>\"'=?#.txt"
    c.put_object(Bucket=b, Key=weird, Body=b"0123456789", ContentType="text/x-test", Metadata={"a": "1"},
                 CacheControl="no-cache")
    o = c.get_object(Bucket=b, Key=weird)
    assert o["Body"].read() == b"0123456789" and o["ContentType"] == "text/x-test" and o["Metadata"] == {"a": "1"}
    assert o["CacheControl"] == "no-cache" and o["ETag"] == '"%s"' % hashlib.md5(b"0123456789").hexdigest()
    assert weird in [x["Key"] for x in c.list_objects_v2(Bucket=b, Prefix="we ird/")["Contents"]]
    h = c.head_object(Bucket=b, Key=weird)
    assert h["ContentLength"] == 10
    # ranges
    r = c.get_object(Bucket=b, Key=weird, Range="bytes=3-5")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206 and r["Body"].read() == b"345"
    assert r["ContentRange"] == "bytes 3-5/10"
    assert c.get_object(Bucket=b, Key=weird, Range="bytes=-2")["Body"].read() == b"89"
    assert c.get_object(Bucket=b, Key=weird, Range="bytes=8-")["Body"].read() == b"89"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_object(Bucket=b, Key=weird, Range="bytes=10-20")
    assert err_code(e) == ("InvalidRange", 416)
    # conditional GET
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_object(Bucket=b, Key=weird, IfNoneMatch=o["ETag"])
    assert err_code(e)[1] == 304
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_object(Bucket=b, Key=weird, IfMatch='"0000"')
    assert err_code(e) == ("PreconditionFailed", 412)
    # copy, with metadata kept and replaced
    c.copy_object(Bucket=b, Key="copy1", CopySource={"Bucket": b, "Key": weird})
    o = c.get_object(Bucket=b, Key="copy1")
    assert o["Body"].read() == b"0123456789" and o["Metadata"] == {"a": "1"}
    c.copy_object(Bucket=b, Key="copy1", CopySource={"Bucket": b, "Key": "copy1"}, MetadataDirective="REPLACE",
                  Metadata={"b": "2"}, ContentType="text/other")
    o = c.head_object(Bucket=b, Key="copy1")
    assert o["Metadata"] == {"b": "2"} and o["ContentType"] == "text/other"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.copy_object(Bucket=b, Key="copy2", CopySource={"Bucket": b, "Key": "no-such"})
    assert err_code(e) == ("NoSuchKey", 404)
    # multi-delete, verbose and quiet
    r = c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k00"}, {"Key": "k01"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["k00", "k01", "never"] and not r.get("Errors")
    r = c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k02"}, {"Key": "../x"}], "Quiet": True})
    assert "Deleted" not in r and [x["Key"] for x in r["Errors"]] == ["../x"]
    assert "k02" not in [x["Key"] for x in c.list_objects_v2(Bucket=b)["Contents"]]
    # missing things
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_object(Bucket=b, Key="k00")
    assert err_code(e) == ("NoSuchKey", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_object(Bucket="no-such-bucket", Key="k")
    assert err_code(e) == ("NoSuchBucket", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.head_object(Bucket=b, Key="k00")
    assert err_code(e)[1] == 404
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_bucket(Bucket=b)
    assert err_code(e) == ("BucketAlreadyOwnedByYou", 409)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_bucket(Bucket=b)
    assert err_code(e) == ("BucketNotEmpty", 409)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_bucket(Bucket="Bad_Bucket")
    assert err_code(e)[0] == "InvalidBucketName"
    assert c.get_bucket_location(Bucket=b)["LocationConstraint"] is None  # us-east-1
    # presigned URLs, V4 and V2, fetched without credentials
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": weird}, ExpiresIn=60)
    assert "X-Amz-Signature=" in url and urllib.request.urlopen(url, timeout=10).read() == b"0123456789"
    url2 = client(s3, sig="s3").generate_presigned_url("get_object", Params={"Bucket": b, "Key": weird},
                                                       ExpiresIn=60)
    assert "Signature=" in url2 and urllib.request.urlopen(url2, timeout=10).read() == b"0123456789"
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "via-url"}, ExpiresIn=60)
    urllib.request.urlopen(urllib.request.Request(put_url, data=b"put by URL", method="PUT"), timeout=10)
    assert c.get_object(Bucket=b, Key="via-url")["Body"].read() == b"put by URL"
    # V2 signatures for ordinary calls too
    c2 = client(s3, sig="s3")
    c2.put_object(Bucket=b, Key="v2 key", Body=b"v2")
    assert c2.get_object(Bucket=b, Key="v2 key")["Body"].read() == b"v2"
    # empty the bucket, then it goes
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=b):
        c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": o["Key"]} for o in page.get("Contents", [])]})
    c.delete_bucket(Bucket=b)
    assert b not in [x["Name"] for x in c.list_buckets()["Buckets"]]


@pytest.mark.timeout(180)
def test_boto3_multipart(s3, tmp_path):
    c = client(s3)
    b = new_bucket(c, "boto-mp")
    part1, part2, tail = os.urandom(6 << 20), os.urandom(5 << 20), os.urandom(1234)
    u = c.create_multipart_upload(Bucket=b, Key="mp/obj", ContentType="application/x-mp", Metadata={"m": "p"})
    uid = u["UploadId"]
    assert [x["UploadId"] for x in c.list_multipart_uploads(Bucket=b).get("Uploads", [])] == [uid]
    e1 = c.upload_part(Bucket=b, Key="mp/obj", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = c.upload_part(Bucket=b, Key="mp/obj", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    e3 = c.upload_part(Bucket=b, Key="mp/obj", UploadId=uid, PartNumber=3, Body=tail)["ETag"]
    assert e1 == '"%s"' % hashlib.md5(part1).hexdigest()
    parts = c.list_parts(Bucket=b, Key="mp/obj", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, 6 << 20, e1), (2, 5 << 20, e2),
                                                                        (3, 1234, e3)]
    assert c.list_parts(Bucket=b, Key="mp/obj", UploadId=uid, MaxParts=2)["IsTruncated"]
    with pytest.raises(botocore.exceptions.ClientError) as e:  # out of order
        c.complete_multipart_upload(Bucket=b, Key="mp/obj", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert err_code(e) == ("InvalidPartOrder", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:  # wrong ETag
        c.complete_multipart_upload(Bucket=b, Key="mp/obj", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e2}, {"PartNumber": 2, "ETag": e2}]})
    assert err_code(e) == ("InvalidPart", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.head_object(Bucket=b, Key="mp/obj")  # nothing visible before completion
    assert err_code(e)[1] == 404
    r = c.complete_multipart_upload(Bucket=b, Key="mp/obj", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]})
    md5s = b"".join(hashlib.md5(p).digest() for p in (part1, part2, tail))
    assert r["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest()
    o = c.get_object(Bucket=b, Key="mp/obj")
    assert o["Body"].read() == part1 + part2 + tail and o["ContentType"] == "application/x-mp"
    assert o["Metadata"] == {"m": "p"}
    assert c.list_multipart_uploads(Bucket=b).get("Uploads", []) == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.upload_part(Bucket=b, Key="mp/obj", UploadId=uid, PartNumber=4, Body=b"late")
    assert err_code(e) == ("NoSuchUpload", 404)

    # a small part before the last is refused at completion; abort
    u2 = c.create_multipart_upload(Bucket=b, Key="small")["UploadId"]
    s1 = c.upload_part(Bucket=b, Key="small", UploadId=u2, PartNumber=1, Body=b"x" * 100)["ETag"]
    s2 = c.upload_part(Bucket=b, Key="small", UploadId=u2, PartNumber=2, Body=b"y" * 100)["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.complete_multipart_upload(Bucket=b, Key="small", UploadId=u2, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]})
    assert err_code(e) == ("EntityTooSmall", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.upload_part(Bucket=b, Key="small", UploadId=u2, PartNumber=10001, Body=b"z")
    assert err_code(e)[1] == 400
    c.abort_multipart_upload(Bucket=b, Key="small", UploadId=u2)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.list_parts(Bucket=b, Key="small", UploadId=u2)
    assert err_code(e) == ("NoSuchUpload", 404)

    # UploadPartCopy: an object assembled from ranges of another
    u3 = c.create_multipart_upload(Bucket=b, Key="assembled")["UploadId"]
    src = {"Bucket": b, "Key": "mp/obj"}
    p1 = c.upload_part_copy(Bucket=b, Key="assembled", UploadId=u3, PartNumber=1, CopySource=src,
                            CopySourceRange="bytes=0-%d" % ((5 << 20) - 1))["CopyPartResult"]["ETag"]
    p2 = c.upload_part_copy(Bucket=b, Key="assembled", UploadId=u3, PartNumber=2, CopySource=src,
                            CopySourceRange="bytes=%d-%d" % (11 << 20, (11 << 20) + 1233))["CopyPartResult"]["ETag"]
    c.complete_multipart_upload(Bucket=b, Key="assembled", UploadId=u3, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
    assert c.get_object(Bucket=b, Key="assembled")["Body"].read() == part1[:5 << 20] + tail

    # boto3's managed transfer (s3transfer): multipart up, ranged parallel download
    from boto3.s3.transfer import TransferConfig
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=4)
    src_file = big_file(tmp_path)
    c.upload_file(str(src_file), b, "transfer.bin", Config=cfg)
    assert c.head_object(Bucket=b, Key="transfer.bin")["ETag"].endswith('-4"')
    dst = tmp_path / "down.bin"
    c.download_file(b, "transfer.bin", str(dst), Config=cfg)
    assert dst.read_bytes() == src_file.read_bytes()
    for k in ("mp/obj", "assembled", "transfer.bin"):
        c.delete_object(Bucket=b, Key=k)
    c.delete_bucket(Bucket=b)


# ---------------------------------------------------------------------------------------------
# authentication and payload checks
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_authentication_failures(s3):
    for sig in ("s3v4", "s3"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client(s3, secret="not-the-secret-at-all", sig=sig).list_buckets()
        assert err_code(e) == ("SignatureDoesNotMatch", 403), sig
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client(s3, key="AKIAUNKNOWNKEY", sig=sig).get_object(Bucket=s3["bucket"], Key="x")
        assert err_code(e) == ("InvalidAccessKeyId", 403), sig
    # anonymous
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(s3["url"] + "/" + s3["bucket"], timeout=10)
    assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()
    # a presigned URL that was changed, and one that expired
    c = client(s3)
    c.put_object(Bucket=s3["bucket"], Key="auth/obj", Body=b"secret data")
    url = c.generate_presigned_url("get_object", Params={"Bucket": s3["bucket"], "Key": "auth/obj"}, ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("auth/obj", "auth/obx"), timeout=10)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()
    url = c.generate_presigned_url("get_object", Params={"Bucket": s3["bucket"], "Key": "auth/obj"}, ExpiresIn=1)
    time.sleep(2.1)  # the expiry is in whole seconds of wall time: nothing to wait on but the clock
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert e.value.code == 403 and b"expired" in e.value.read()
    # a body that does not match its declared SHA-256 or Content-MD5 is not stored
    data, _ = signed(s3, "PUT", "/%s/auth/hash" % s3["bucket"], body=b"actual body",
                     payload=hashlib.sha256(b"another body").hexdigest())
    resp = raw(s3, data)
    assert status_of(resp) == 400 and code_of(resp) == "XAmzContentSHA256Mismatch", resp
    data, _ = signed(s3, "PUT", "/%s/auth/hash" % s3["bucket"], body=b"actual body",
                     headers={"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()},
                     payload="UNSIGNED-PAYLOAD")
    resp = raw(s3, data)
    assert status_of(resp) == 400 and code_of(resp) == "BadDigest", resp
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.head_object(Bucket=s3["bucket"], Key="auth/hash")
    assert err_code(e)[1] == 404
    # a request signed for another time
    req = AWSRequest("GET", s3["url"] + "/", headers={"X-Amz-Date": "20200101T000000Z",
                                                      "X-Amz-Content-SHA256": hashlib.sha256(b"").hexdigest()})
    req.context["timestamp"] = "20200101T000000Z"
    auth = S3SigV4Auth(Credentials(s3["key"], s3["secret"]), "s3", "us-east-1")
    cr = auth.canonical_request(req)
    req.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/20200101/us-east-1/s3/aws4_request, " \
        "SignedHeaders=%s, Signature=%s" % (s3["key"], auth.signed_headers(auth.headers_to_sign(req)),
                                            auth.signature(auth.string_to_sign(req, cr), req))
    hdrs = "".join("%s: %s\r\n" % kv for kv in req.headers.items())
    resp = raw(s3, ("GET / HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n" % (s3["host"], s3["port"], hdrs)).encode())
    assert status_of(resp) == 403 and code_of(resp) == "RequestTimeTooSkewed", resp


# ---------------------------------------------------------------------------------------------
# aws-chunked
# ---------------------------------------------------------------------------------------------
def _hmac(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, hashlib.sha256).digest()


def chunked_put(s3, key, chunks, tamper=None):
    """PUT key with STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the seed from botocore's signer, each
    chunk's signature computed here.  tamper(i, data) may change chunk i after it was signed."""
    total = sum(len(c) for c in chunks)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(total)}
    body_len = 0
    for ch in chunks + [b""]:
        body_len += len("%x;chunk-signature=" % len(ch)) + 64 + 2 + len(ch) + 2
    headers["Content-Length"] = str(body_len)
    data, req = signed(s3, "PUT", "/%s/%s" % (s3["bucket"], key), headers=headers, body=b"",
                       payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    auth = req.headers["Authorization"]
    seed = auth.rsplit("Signature=", 1)[1]
    date = req.headers["X-Amz-Date"]
    scope = "%s/us-east-1/s3/aws4_request" % date[:8]
    k = _hmac(_hmac(_hmac(_hmac(("AWS4" + s3["secret"]).encode(), date[:8]), "us-east-1"), "s3"), "aws4_request")
    prev = seed
    body = b""
    empty = hashlib.sha256(b"").hexdigest()
    for i, ch in enumerate(chunks + [b""]):
        sts = "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s" % (date, scope, prev, empty,
                                                               hashlib.sha256(ch).hexdigest())
        prev = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if tamper:
            ch = tamper(i, ch)
        body += b"%x;chunk-signature=%s\r\n" % (len(ch), prev.encode()) + ch + b"\r\n"
    return raw(s3, data + body, timeout=30)


@pytest.mark.timeout(60)
def test_aws_chunked_uploads(s3):
    c = client(s3)
    chunks = [os.urandom(65536), os.urandom(65536), os.urandom(1000)]
    resp = chunked_put(s3, "chunked/ok", chunks)
    assert status_of(resp) == 200, resp
    assert c.get_object(Bucket=s3["bucket"], Key="chunked/ok")["Body"].read() == b"".join(chunks)
    # one changed byte in the second chunk: refused, nothing stored
    resp = chunked_put(s3, "chunked/bad", chunks, tamper=lambda i, ch: ch[:10] + b"X" + ch[11:] if i == 1 else ch)
    assert status_of(resp) == 403 and code_of(resp) == "SignatureDoesNotMatch", resp
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.head_object(Bucket=s3["bucket"], Key="chunked/bad")
    assert err_code(e)[1] == 404
    # unsigned chunks with a CRC32C trailer (what newer SDKs send), right and wrong
    for crc, want in ((kwire.crc32c(b"hello world"), 200), (12345, 400)):
        body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32c:%s\r\n\r\n" % base64.b64encode(
            crc.to_bytes(4, "big"))
        data, _ = signed(s3, "PUT", "/%s/chunked/trailer" % s3["bucket"], body=body,
                         headers={"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "11",
                                  "x-amz-trailer": "x-amz-checksum-crc32c"},
                         payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        resp = raw(s3, data)
        assert status_of(resp) == want, resp
    assert c.get_object(Bucket=s3["bucket"], Key="chunked/trailer")["Body"].read() == b"hello world"


# ---------------------------------------------------------------------------------------------
# s3cmd and libs3
# ---------------------------------------------------------------------------------------------
def s3cmd(s3, sig, *args, check=True):
    cmd = [S3CMD, "-c", "/dev/null", "--no-ssl", "--host=%s:%d" % (s3["host"], s3["port"]),
           "--host-bucket=%s:%d" % (s3["host"], s3["port"]), "--access_key=" + s3["key"],
           "--secret_key=" + s3["secret"], "--region=us-east-1", "--no-progress"]
    cmd += ["--signature-v2"] if sig == "v2" else []
    p = subprocess.run(cmd + list(args), capture_output=True, timeout=TOOL_TIMEOUT)
    if check:
        assert p.returncode == 0, (args, p.stdout[-2000:], p.stderr[-2000:])
    return p


@pytest.mark.skipif(not S3CMD, reason="s3cmd is not installed")
@pytest.mark.parametrize("sig", ["v2", "v4"])
@pytest.mark.timeout(240)
def test_s3cmd(s3, tmp_path, sig):
    b = "s3cmd-" + sig
    src = big_file(tmp_path)
    s3cmd(s3, sig, "mb", "s3://" + b)
    assert "s3://" + b in s3cmd(s3, sig, "ls").stdout.decode()
    s3cmd(s3, sig, "put", "--multipart-chunk-size-mb=5", str(src), "s3://%s/dir/big.bin" % b)
    etag = client(s3).head_object(Bucket=b, Key="dir/big.bin")["ETag"]
    assert etag.endswith('-4"'), etag  # 20 MB in 5 MB parts
    listing = s3cmd(s3, sig, "ls", "--recursive", "s3://" + b).stdout.decode()
    assert re.search(r"\s%d\s+s3://%s/dir/big\.bin" % (MB20, b), listing), listing
    dst = tmp_path / "back.bin"
    s3cmd(s3, sig, "get", "--force", "s3://%s/dir/big.bin" % b, str(dst))
    assert dst.read_bytes() == src.read_bytes()
    small = tmp_path / "small.txt"
    small.write_bytes(b"small one")
    s3cmd(s3, sig, "put", str(small), "s3://%s/small one.txt" % b)
    assert client(s3).get_object(Bucket=b, Key="small one.txt")["Body"].read() == b"small one"
    s3cmd(s3, sig, "info", "s3://%s/small one.txt" % b)
    s3cmd(s3, sig, "del", "--recursive", "--force", "s3://%s/" % b)
    s3cmd(s3, sig, "rb", "s3://" + b)
    assert "s3://" + b not in s3cmd(s3, sig, "ls").stdout.decode()
    p = s3cmd(s3, sig, "get", "s3://%s/none" % b, str(tmp_path / "x"), check=False)
    assert p.returncode != 0


def libs3(s3, *args, check=True):
    env = dict(os.environ, S3_ACCESS_KEY_ID=s3["key"], S3_SECRET_ACCESS_KEY=s3["secret"],
               S3_HOSTNAME="%s:%d" % (s3["host"], s3["port"]))
    p = subprocess.run([LIBS3, "-u", "-r", "0"] + list(args), env=env, capture_output=True, timeout=TOOL_TIMEOUT)
    if check:
        assert p.returncode == 0, (args, p.stdout[-2000:], p.stderr[-2000:])
    return p


@pytest.mark.skipif(not LIBS3, reason="libs3's s3 tool (libs3-2) is not installed")
@pytest.mark.timeout(180)
def test_libs3_tool(s3, tmp_path):
    """Debian's libs3 2.0 signs with SigV2 and has no multipart: one 20 MB PUT."""
    src = big_file(tmp_path)
    libs3(s3, "create", "libs3-bucket")
    assert "libs3-bucket" in libs3(s3, "list").stdout.decode()
    libs3(s3, "put", "libs3-bucket/a/big.bin", "filename=%s" % src, "contentType=application/x-big")
    listing = libs3(s3, "list", "libs3-bucket").stdout.decode()
    assert "a/big.bin" in listing, listing
    dst = tmp_path / "back.bin"
    libs3(s3, "get", "libs3-bucket/a/big.bin", "filename=%s" % dst)
    assert dst.read_bytes() == src.read_bytes()
    head = libs3(s3, "head", "libs3-bucket/a/big.bin").stdout.decode()
    assert "Content-Length: %d" % MB20 in head and "application/x-big" in head, head
    assert client(s3).head_object(Bucket="libs3-bucket", Key="a/big.bin")["ContentLength"] == MB20
    p = libs3(s3, "get", "libs3-bucket/none", "filename=%s" % (tmp_path / "x"), check=False)
    assert b"NoSuchKey" in p.stdout + p.stderr  # the tool prints S3's error (and exits 0)
    libs3(s3, "delete", "libs3-bucket/a/big.bin")
    libs3(s3, "delete", "libs3-bucket")
    assert "libs3-bucket" not in libs3(s3, "list").stdout.decode()


# ---------------------------------------------------------------------------------------------
# bad input and faults
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_bad_input_over_raw_sockets(mk, s3):
    b = s3["bucket"]
    cases = [
        (b"\x00\x01\x02garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n", 400),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 70000 + b"\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(300)) + b"\r\n", 400),
        (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /b/%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\r\n", 400),
        (b"GET /?" + b"&".join(b"p%d" % i for i in range(100)) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ]
    for data, want in cases:
        resp = raw(s3, data)
        assert status_of(resp) == want, (data[:60], resp[:300])
        assert code_of(resp), resp[:300]  # always an S3 error body
    # a client that half-closes after its requests still gets every answer
    resp = raw(s3, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n", close_write=True)
    assert resp.count(b"HTTP/1.1 403 ") == 2 and resp.count(b"<Code>AccessDenied</Code>") == 2, resp
    # truncated requests: nothing comes back but a close, or a 400
    for data in (b"GET / HT", b"GET / HTTP/1.1\r\nHost: x\r\n", b"PUT /%s/t HTTP/1.1\r\nContent-" % b.encode()):
        resp = raw(s3, data, timeout=3, close_write=True)
        assert resp == b"" or status_of(resp) == 400, resp
    # signed but wrong: traversal in keys, unknown operations, bad XML, too large, bad part numbers
    def sreq(method, path, body=b"", headers=None):
        return raw(s3, signed(s3, method, path, headers=headers, body=body, payload="UNSIGNED-PAYLOAD")[0])
    for key in ("../../etc/passwd", "a/../b", "./x", "a/./b"):
        resp = sreq("PUT", "/%s/%s" % (b, quote(key, safe="")), b"x")
        assert status_of(resp) == 400 and code_of(resp) == "InvalidArgument", (key, resp)
        resp = sreq("PUT", "/%s/%s" % (b, key), b"x")
        assert status_of(resp) == 400, (key, resp)
    resp = sreq("GET", "/%s/%s" % (b, "k" * 1100))
    assert code_of(resp) == "KeyTooLongError", resp
    resp = sreq("POST", "/%s/obj?restore" % b)
    assert status_of(resp) == 501 and code_of(resp) == "NotImplemented", resp
    resp = sreq("PATCH", "/%s/obj" % b)
    assert status_of(resp) == 405 and code_of(resp) == "MethodNotAllowed", resp
    resp = sreq("GET", "/%s?versions" % b)
    assert status_of(resp) == 501, resp
    uid = client(s3).create_multipart_upload(Bucket=b, Key="xml")["UploadId"]
    for body in (b"<not xml", b"<CompleteMultipartUpload></CompleteMultipartUpload>",
                 b"<Other/>", b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part>"
                 b"</CompleteMultipartUpload>",
                 b'<!DOCTYPE a [<!ENTITY x "y">]><CompleteMultipartUpload>&x;</CompleteMultipartUpload>'):
        resp = sreq("POST", "/%s/xml?uploadId=%s" % (b, uid), body)
        assert status_of(resp) == 400 and code_of(resp) == "MalformedXML", (body, resp)
    resp = sreq("POST", "/%s/xml?uploadId=%s" % (b, "f" * 32), b"<CompleteMultipartUpload/>")
    assert code_of(resp) == "NoSuchUpload", resp
    resp = sreq("PUT", "/%s/xml?uploadId=%s&partNumber=0" % (b, uid), b"x")
    assert code_of(resp) == "InvalidArgument", resp
    resp = sreq("POST", "/%s?delete" % b, b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>")
    assert code_of(resp) == "MalformedXML", resp
    # a declared size over the limit is refused before any body byte (and before 100-continue)
    data, _ = signed(s3, "PUT", "/%s/huge" % b, headers={"Content-Length": str(6 << 30), "Expect": "100-continue"},
                     payload="UNSIGNED-PAYLOAD")
    resp = raw(s3, data)
    assert status_of(resp) == 400 and code_of(resp) == "EntityTooLarge" and b"100 Continue" not in resp, resp
    data, _ = signed(s3, "PUT", "/%s/nolength" % b, headers={"Transfer-Encoding": "chunked"},
                     payload="UNSIGNED-PAYLOAD")
    resp = raw(s3, data.replace(b"Content-Length: 0\r\n", b"") + b"3\r\nabc\r\n0\r\n\r\n")
    assert status_of(resp) == 200, resp  # chunked transfer encoding is fine
    mk.assert_alive("bad input")
    assert_works(s3)


@pytest.mark.timeout(60)
def test_interrupted_uploads_leave_nothing(mk, s3):
    c = client(s3)
    b = s3["bucket"]
    c.put_object(Bucket=b, Key="int/old", Body=b"the old version")
    for key in ("int/new", "int/old"):
        # a lying Content-Length: half the body, then the client goes away
        data, _ = signed(s3, "PUT", "/%s/%s" % (b, key), headers={"Content-Length": str(1 << 20)},
                         payload="UNSIGNED-PAYLOAD")
        sock = socket.create_connection((s3["host"], s3["port"]), timeout=10)
        try:
            sock.sendall(data + os.urandom(1 << 19))
            # in progress: a temporary file, and nothing visible under the key
            wait_until(lambda: len(tmp_files(mk)) == 1, "the upload's temporary file")
            listed = [x["Key"] for x in c.list_objects_v2(Bucket=b, Prefix="int/").get("Contents", [])]
            assert listed == ["int/old"], listed
        finally:
            sock.close()
        wait_until(lambda: tmp_files(mk) == [], "the temporary file to go")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.head_object(Bucket=b, Key="int/new")
    assert err_code(e)[1] == 404
    assert c.get_object(Bucket=b, Key="int/old")["Body"].read() == b"the old version"
    # a truncated aws-chunked body (the client stops after the first chunk) stores nothing
    resp = chunked_put(s3, "int/chunked", [os.urandom(1000), os.urandom(1000)],
                       tamper=lambda i, ch: ch if i == 0 else b"")
    assert status_of(resp) in (400, 403, None), resp
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.head_object(Bucket=b, Key="int/chunked")
    assert err_code(e)[1] == 404
    mk.assert_alive("interrupted uploads")


def read_responses(sock, heads, timeout=20):
    """One HTTP answer per entry of `heads` (True: the request was a HEAD, so no body follows
    whatever its Content-Length says), in order: [(status, lower-case headers, body)]."""
    buf = b""
    out = []
    deadline = time.monotonic() + timeout
    for is_head in heads:
        while b"\r\n\r\n" not in buf:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(1 << 20)
            assert chunk, "closed after %d answers" % len(out)
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        hdrs = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
        size = 0 if is_head else int(hdrs.get("content-length", "0"))
        while len(buf) < size:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(1 << 20)
            assert chunk, "closed in a body"
            buf += chunk
        out.append((int(lines[0].split()[1]), hdrs, buf[:size]))
        buf = buf[size:]
    return out


@pytest.mark.timeout(60)
def test_pipelined_requests_answer_in_order(mk, s3):
    """Requests sent back to back on one connection, the first a 3 MB GET that is streamed: the
    answers come in order, whole, and the connection stays usable."""
    c = client(s3)
    big, small = os.urandom(3 << 20), b"small object"
    c.put_object(Bucket=s3["bucket"], Key="pipe/big", Body=big)
    c.put_object(Bucket=s3["bucket"], Key="pipe/small", Body=small)
    reqs = [signed(s3, "GET", "/%s/pipe/big" % s3["bucket"], payload="UNSIGNED-PAYLOAD")[0],
            signed(s3, "GET", "/%s/pipe/small" % s3["bucket"], payload="UNSIGNED-PAYLOAD")[0],
            signed(s3, "HEAD", "/%s/pipe/big" % s3["bucket"], payload="UNSIGNED-PAYLOAD")[0],
            signed(s3, "GET", "/%s/pipe/none" % s3["bucket"], payload="UNSIGNED-PAYLOAD")[0],
            signed(s3, "GET", "/%s/pipe/small" % s3["bucket"], headers={"Range": "bytes=0-4"},
                   payload="UNSIGNED-PAYLOAD")[0]]
    with socket.create_connection((s3["host"], s3["port"]), timeout=10) as sock:
        sock.sendall(b"".join(reqs))
        got = read_responses(sock, [False, False, True, False, False])
        assert [g[0] for g in got] == [200, 200, 200, 404, 206]
        assert got[0][2] == big and got[1][2] == small and got[4][2] == b"small"
        assert got[2][1]["content-length"] == str(len(big)) and got[2][1]["etag"] == got[0][1]["etag"]
        assert b"<Code>NoSuchKey</Code>" in got[3][2]
        ids = [g[1]["x-amz-request-id"] for g in got]
        assert len(set(ids)) == 5
        # still open and usable
        sock.sendall(reqs[1])
        assert read_responses(sock, [False])[0][2] == small
    mk.assert_alive("pipelining")


def wait_until(cond, what, timeout=10):
    """Poll cond (a file-system state of the server, which sends no event) for at most timeout s."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def tmp_files(mk):
    m = re.search(r"; data (.+?); [0-9.]+ ms\)", mk.ready_line)
    d = os.path.join(m.group(1), "s3", "_tmp")
    return os.listdir(d)


@pytest.mark.timeout(60)
def test_s3_traffic_never_stalls_the_brokers(mk, s3):
    """An upload stalled mid-body and a 20 MB download nobody reads hold S3 connections; Kafka
    requests on the broker are answered meanwhile, quickly."""
    c = client(s3)
    c.put_object(Bucket=s3["bucket"], Key="stall/big", Body=os.urandom(MB20))
    stalled = socket.create_connection((s3["host"], s3["port"]), timeout=10)
    data, _ = signed(s3, "PUT", "/%s/stall/up" % s3["bucket"], headers={"Content-Length": str(1 << 20)},
                     payload="UNSIGNED-PAYLOAD")
    stalled.sendall(data + b"x" * 1000)
    unread = socket.create_connection((s3["host"], s3["port"]), timeout=10)
    unread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    data, _ = signed(s3, "GET", "/%s/stall/big" % s3["bucket"], payload="UNSIGNED-PAYLOAD")
    unread.sendall(data)
    try:
        with mk.wire() as w:
            for _ in range(20):
                t0 = time.monotonic()
                w.api_versions()
                assert time.monotonic() - t0 < 1.0
        # and S3 itself serves others meanwhile
        assert_works(s3)
    finally:
        stalled.close()
        unread.close()
    mk.assert_alive("stalled S3 clients")
