"""The S3/R2 backend and the batch downloader against a real S3 server (moto, its own process) through
a loopback proxy that adds 40 ms per request and cuts transfers (DESIGN.md §6)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from pose_factory import storage as S
from pose_factory.storage.download import download_batch
from pose_factory.errors import ManifestError, StorageError
from pose_factory.storage.s3 import S3Storage, endpoint_for_account
from tests.s3_support import (ACCESS_KEY, REGION, SECRET_KEY, bucket, moto_server, png_bytes,  # noqa: F401
                              proxy, s3_storage, store, write_batch)

ROOT = Path(__file__).resolve().parent.parent
BID = "00112233445566ff"


def batch_files(views=2, frames=3, size=128):
    files = {}
    for f in range(frames):
        for v in range(views):
            files[("openpose", v, f)] = png_bytes(100 * v + f, size)
            files[("keypoints", v, f)] = json.dumps({"view": v, "frame": f}).encode()
    return files


def cached(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_bucket_made_as_on_r2(moto_server, bucket):
    client = boto3.client("s3", endpoint_url=moto_server.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY)
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "auto"


def test_endpoint_and_repr():
    assert endpoint_for_account("abc123") == "https://abc123.r2.cloudflarestorage.com"
    with pytest.raises(StorageError):
        endpoint_for_account("evil.com/x")
    s = S3Storage("bkt", "http://127.0.0.1:9", "AKID", "very-secret-value")
    assert "very-secret-value" not in repr(s) and "very-secret-value" not in str(vars(s))
    assert isinstance(s, S.Storage)
    with pytest.raises(StorageError, match="CLOUDFLARE_R2_SECRET_ACCESS_KEY"):
        S3Storage.from_env({"CLOUDFLARE_R2_ACCESS_KEY_ID": "a", "POSE_FACTORY_R2_BUCKET": "b",
                            "CLOUDFLARE_R2_ACCOUNT_ID": "abc"})
    env = {"CLOUDFLARE_R2_ACCESS_KEY_ID": "a", "CLOUDFLARE_R2_SECRET_ACCESS_KEY": "s", "POSE_FACTORY_R2_BUCKET": "b",
           "CLOUDFLARE_R2_ACCOUNT_ID": "abc"}
    assert S3Storage.from_env(env).endpoint_url == "https://abc.r2.cloudflarestorage.com"


def test_put_get_list_exists_delete(store, proxy, tmp_path):
    store.put_bytes("projects/a/x.json", b"1")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    store.put_file("projects/a/b/big.bin", src)
    store.put_bytes("projects/ab/y", b"2")
    assert store.get_bytes("projects/a/b/big.bin") == src.read_bytes()
    assert store.exists("projects/a/x.json") and not store.exists("projects/a/nope")
    assert store.list("projects/a/") == ["projects/a/b/big.bin", "projects/a/x.json"]
    assert store.list("projects/a") == ["projects/a/b/big.bin", "projects/a/x.json", "projects/ab/y"]
    assert store.list("nothing/") == []
    with pytest.raises(StorageError, match="no such key 'projects/a/nope'"):
        store.get_bytes("projects/a/nope")
    store.delete("projects/a/x.json")
    store.delete("projects/a/x.json")  # absent: no error, as LocalStorage
    assert not store.exists("projects/a/x.json")
    for key in ("../x", "/etc/passwd", "a//b", "a\\b"):
        with pytest.raises(StorageError):
            store.put_bytes(key, b"x")
    assert store.list("") == ["projects/a/b/big.bin", "projects/ab/y"]
    assert proxy.gets  # the requests really went through the proxy


def test_put_file_multipart(proxy, bucket, tmp_path):
    store = s3_storage(proxy.url, bucket, multipart_threshold=5 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 << 20))
    store.put_file("projects/a/big.bin", src)
    assert proxy.puts[f"{bucket}/projects/a/big.bin"] == 2  # two 8 MiB parts through the transfer manager
    assert store.get_bytes("projects/a/big.bin") == src.read_bytes()
    proxy.reset_counts()
    store.download_file("projects/a/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    ranges = [r for k, r in proxy.ranges if k == f"{bucket}/projects/a/big.bin"]
    assert len(ranges) == 2 and all(r and r.startswith("bytes=") for r in ranges)  # ranged parts


def test_batch_writer_over_s3_writes_manifest_last(store, proxy, bucket):
    files = batch_files()
    m = write_batch(store, "p", BID, files, views=2, frames=3)
    puts = [key for method, key in proxy.log if method == "PUT"]
    assert len(puts) == len(files) + 1
    assert puts[-1] == f"{bucket}/{S.manifest_key('p', BID)}"
    assert S.read_manifest(store, "p", BID) == m
    assert S.list_batches(store, "p") == [BID]


def test_download_batch_parallel(store, proxy, bucket, tmp_path):
    files = batch_files()
    m = write_batch(store, "p", BID, files, views=2, frames=3)
    seen = []
    got, folder = download_batch(store, "p", BID, tmp_path / "cache", workers=8,
                                 progress=lambda done, total: seen.append((done, total)))
    assert got == m and folder == (tmp_path / "cache" / "p" / BID).resolve()
    want = {f"{n}/v{v:02d}_f{f:04d}.{'json' if n == 'keypoints' else 'png'}": data for (n, v, f), data in files.items()}
    on_disk = cached(folder)
    assert json.loads(on_disk.pop("manifest.json")) == m
    stamps = json.loads(on_disk.pop(".verified.json"))  # each file's sha256, stamped once it matched
    assert {k: v[-1] for k, v in stamps.items()} == {k: hashlib.sha256(d).hexdigest() for k, d in want.items()}
    assert on_disk == want
    assert seen == [(i, len(files)) for i in range(1, len(files) + 1)]

    # a second load fetches no file again: only the manifest (HEAD + GET)
    proxy.reset_counts()
    download_batch(store, "p", BID, tmp_path / "cache")
    assert sum(proxy.gets.values()) == 1 and proxy.gets[f"{bucket}/{S.manifest_key('p', BID)}"] == 1

    # only the passes asked for
    _, only = download_batch(store, "p", BID, tmp_path / "other", names=["openpose"])
    assert sorted(cached(only)) == [".verified.json", "manifest.json"] + sorted(k for k in want if k.startswith("openpose/"))
    with pytest.raises(StorageError, match="no pass"):
        download_batch(store, "p", BID, tmp_path / "other", names=["depth"])


def test_cut_transfer_resumes_with_a_range_get(store, proxy, bucket, tmp_path):
    files = batch_files(size=256)
    write_batch(store, "p", BID, files, views=2, frames=3)
    key = f"{bucket}/{S.batch_prefix('p', BID)}openpose/v01_f0002.png"
    assert len(files[("openpose", 1, 2)]) > 20_000
    proxy.reset_counts()
    proxy.cut(key, 5000)
    _, folder = download_batch(store, "p", BID, tmp_path / "cache")
    assert (folder / "openpose/v01_f0002.png").read_bytes() == files[("openpose", 1, 2)]
    # the cut object was asked for twice, the second time only from byte 5000; every other once
    assert [r for k, r in proxy.ranges if k == key] == [None, "bytes=5000-"]
    assert all(n == 1 for k, n in proxy.gets.items() if k != key)
    assert len(proxy.gets) == len(files) + 1
    assert not list(folder.rglob("*.part"))


def test_broken_download_resumes_in_a_later_run(store, proxy, bucket, tmp_path):
    files = batch_files(size=256)
    write_batch(store, "p", BID, files, views=2, frames=3)
    key = f"{bucket}/{S.batch_prefix('p', BID)}openpose/v00_f0001.png"
    proxy.cut(key, 4000, times=100)  # every GET of it breaks
    with pytest.raises(StorageError, match="openpose/v00_f0001.png"):
        download_batch(store, "p", BID, tmp_path / "cache", attempts=2)
    folder = (tmp_path / "cache" / "p" / BID).resolve()
    assert not (folder / "openpose/v00_f0001.png").exists()  # never a partial file under its real name
    assert (folder / "openpose/v00_f0001.png.part").stat().st_size == 8000  # two attempts, 4000 bytes each
    assert not (folder / "manifest.json").exists()

    proxy.cut(key, 0, times=0)
    proxy.reset_counts()
    download_batch(store, "p", BID, tmp_path / "cache")
    assert (folder / "openpose/v00_f0001.png").read_bytes() == files[("openpose", 0, 1)]
    data_gets = {k: n for k, n in proxy.gets.items() if not k.endswith("manifest.json")}
    assert data_gets == {key: 1}  # only the missing part of the one missing file
    assert [r for k, r in proxy.ranges if k == key] == ["bytes=8000-"]


def test_object_that_does_not_match_its_hash_is_refused(store, tmp_path):
    files = batch_files()
    write_batch(store, "p", BID, files, views=2, frames=3)
    bad = S.batch_prefix("p", BID) + "openpose/v00_f0002.png"
    store.put_bytes(bad, b"not the rendered image")
    with pytest.raises(StorageError, match="openpose/v00_f0002.png"):
        download_batch(store, "p", BID, tmp_path / "cache")
    folder = tmp_path / "cache" / "p" / BID
    assert not (folder / "openpose/v00_f0002.png").exists()
    assert not list(folder.rglob("*.part")) and not (folder / "manifest.json").exists()


def test_dotdot_keys_refused(store, tmp_path):
    files = batch_files(views=1, frames=1)
    m = write_batch(store, "p", BID, files, views=1, frames=1)
    m["entries"][0]["files"]["openpose"]["key"] = "../../../../escape/v00_f0000.png"
    store.put_bytes(S.manifest_key("p", BID), json.dumps(m).encode())
    with pytest.raises(ManifestError, match=r"\.\./"):
        download_batch(store, "p", BID, tmp_path / "cache")
    assert not (tmp_path / "escape").exists() and not list(tmp_path.rglob("*.png"))


def test_cache_symlink_out_of_folder_refused(store, tmp_path):
    write_batch(store, "p", BID, batch_files(views=1, frames=1), views=1, frames=1)
    folder = tmp_path / "cache" / "p" / BID
    folder.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", folder / "openpose")
    with pytest.raises(StorageError, match="outside the cache folder"):
        download_batch(store, "p", BID, tmp_path / "cache")
    assert list((tmp_path / "outside").iterdir()) == []


UPLOADER = r"""
import sys
from tests.s3_support import png_bytes, s3_storage, write_batch
store = s3_storage(sys.argv[1], sys.argv[2])
files = {("openpose", 0, f): png_bytes(f) for f in range(40)}
write_batch(store, "p", sys.argv[3], files, views=1, frames=40, on_file=lambda n, v, f: print(f, flush=True))
print("committed", flush=True)
"""


def test_uploader_killed_half_way_leaves_no_manifest(store, proxy, bucket, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", UPLOADER, proxy.url, bucket, BID], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, proc.kill)  # a hung child cannot hang the suite
    watchdog.start()
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        watchdog.cancel()
    assert [s.strip() for s in lines] == ["0", "1", "2", "3", "4"] and "committed" not in rest
    stored = store.list(S.batch_prefix("p", BID))
    assert 5 <= len(stored) < 40  # killed half-way: some files are up
    assert S.manifest_key("p", BID) not in stored
    assert S.read_manifest(store, "p", BID) is None
    assert S.list_batches(store, "p") == []
    with pytest.raises(StorageError, match="no manifest"):
        download_batch(store, "p", BID, tmp_path / "cache")


def test_stale_part_file_is_replaced_not_trusted(store, proxy, bucket, tmp_path):
    files = batch_files(views=1, frames=1, size=256)
    write_batch(store, "p", BID, files, views=1, frames=1)
    folder = tmp_path / "cache" / "p" / BID
    (folder / "openpose").mkdir(parents=True)
    (folder / "openpose/v00_f0000.png.part").write_bytes(b"left by an older object")
    proxy.reset_counts()
    download_batch(store, "p", BID, tmp_path / "cache")
    assert (folder / "openpose/v00_f0000.png").read_bytes() == files[("openpose", 0, 0)]
    key = f"{bucket}/{S.batch_prefix('p', BID)}openpose/v00_f0000.png"
    assert [r for k, r in proxy.ranges if k == key] == ["bytes=23-", None]  # resumed, refused, fetched whole


def test_download_from_local_storage(tmp_path):
    local = S.LocalStorage(tmp_path / "store")
    files = batch_files(views=1, frames=2)
    m = write_batch(local, "p", BID, files, views=1, frames=2)
    got, folder = download_batch(local, "p", BID, tmp_path / "cache")
    assert got == m and cached(folder)["openpose/v00_f0001.png"] == files[("openpose", 0, 1)]
