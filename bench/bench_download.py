"""Loading a 64-image batch through a 40 ms-per-request proxy (R2 is tens of ms away): the project's
parallel downloader (download_batch, 16 workers) vs one-by-one get_object, side by side.

    .venv/bin/python bench/bench_download.py [--images 64] [--size 512] [--latency 0.04] [--rounds 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402

from pose_factory import storage as S  # noqa: E402
from pose_factory.storage.download import download_batch  # noqa: E402
from tests.s3_support import (ACCESS_KEY, REGION, SECRET_KEY, FaultProxy, MotoServer, make_bucket,  # noqa: E402
                              png_bytes, s3_storage, write_batch)

BID = "be0cbe0cbe0cbe0c"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--latency", type=float, default=0.04)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    views = 4
    frames = -(-args.images // views)

    server = MotoServer()
    proxy = FaultProxy(server.port, latency=0.0)
    try:
        bucket = make_bucket(server.url)
        store = s3_storage(proxy.url, bucket, max_workers=args.workers)
        files = {("openpose", v, f): png_bytes(1000 + f * views + v, args.size)
                 for f in range(frames) for v in range(views) if f * views + v < args.images}
        # a full grid is what the manifest wants: pad the last frame when images % 4 != 0
        for f in range(frames):
            for v in range(views):
                files.setdefault(("openpose", v, f), png_bytes(5000 + v, args.size))
        write_batch(store, "bench", BID, files, views=views, frames=frames)
        total_mb = sum(map(len, files.values())) / 1e6
        keys = [S.batch_prefix("bench", BID) + f"openpose/v{v:02d}_f{f:04d}.png" for (_, v, f) in files]
        print(f"{len(files)} PNGs {args.size}x{args.size}, {total_mb:.1f} MB, proxy latency "
              f"{args.latency * 1000:.0f} ms per request, moto server in its own process")

        proxy.latency = args.latency
        client = boto3.client("s3", endpoint_url=proxy.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
        client.list_buckets()  # connection and credentials warm for both contenders
        serial, parallel = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            got = [client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
            serial.append(time.perf_counter() - t)
            assert got == list(files.values())

            with tempfile.TemporaryDirectory() as cache:
                t = time.perf_counter()
                _, folder = download_batch(store, "bench", BID, cache, workers=args.workers)
                parallel.append(time.perf_counter() - t)
                assert len(list(folder.rglob("*.png"))) == len(files)
        for i, (a, b) in enumerate(zip(serial, parallel)):
            print(f"round {i + 1}: one-by-one get_object {a:6.2f} s | download_batch ({args.workers} workers, "
                  f"manifest read + sha256 checks included) {b:6.2f} s | {a / b:4.1f}x")
        best = min(serial) / min(parallel)
        print(f"best of {args.rounds}: one-by-one {min(serial):.2f} s, download_batch {min(parallel):.2f} s, "
              f"speed-up {best:.1f}x (goal >= 4x)")
    finally:
        proxy.stop()
        server.stop()


if __name__ == "__main__":
    main()
