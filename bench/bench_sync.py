"""The sync CLI against an S3 server 40 ms away (moto in its own process behind the latency proxy,
as R2 is tens of ms away): a 200-file batch (100 small PNGs + 100 keypoint JSONs, a valid
manifest; made synthetically, not rendered)

  1. `pull` with the tool (python -m pose_factory pull, in process) vs one-by-one get_object
     into files (goal: >= 4x faster);
  2. a second `pull` with nothing changed (goal: under 1 s; it reads the manifest and checks
     every file's sha256);
  3. `projects rename` of the 201-object project (objects per second: copy, verify, delete).

    .venv/bin/python bench/bench_sync.py [--views 10] [--frames 10] [--latency 0.04] [--workers 16]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402

from pose_factory import cli  # noqa: E402
from pose_factory import storage as S  # noqa: E402
from tests.s3_support import (ACCESS_KEY, REGION, SECRET_KEY, FaultProxy, MotoServer, make_bucket,  # noqa: E402
                              png_bytes, s3_storage, write_batch)

BID = "5e7c5e7c5e7c5e7c"


def run_cli(cfg: Path, *args) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--config", str(cfg), *args, "--json"])
    got = json.loads(out.getvalue())
    if code != 0:
        raise SystemExit(f"{args}: exit {code}: {got}")
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", type=int, default=128, help="PNG side in pixels")
    ap.add_argument("--latency", type=float, default=0.04)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()

    server = MotoServer()
    proxy = FaultProxy(server.port, latency=0.0)
    tmp = tempfile.TemporaryDirectory(prefix="bench_sync.")
    try:
        bucket = make_bucket(server.url)
        store = s3_storage(proxy.url, bucket, max_workers=args.workers)
        files = {}
        for v in range(args.views):
            for f in range(args.frames):
                files[("openpose", v, f)] = png_bytes(100 * v + f, args.size)
                files[("keypoints", v, f)] = json.dumps(
                    {"people": [{"pose_keypoints_2d": [float(v), float(f), 1.0] * 18}],
                     "canvas_width": args.size, "canvas_height": args.size}).encode()
        manifest = write_batch(store, "bench", BID, files, views=args.views, frames=args.frames)
        keys = [S.batch_prefix("bench", BID) + i["key"] for e in manifest["entries"] for i in e["files"].values()]
        mb = sum(map(len, files.values())) / 1e6
        print(f"batch: {len(keys)} files ({args.views} views x {args.frames} frames x openpose PNG {args.size} px + "
              f"keypoints JSON), {mb:.2f} MB; proxy latency {args.latency * 1000:.0f} ms per request; "
              f"{args.workers} parallel transfers")

        root = Path(tmp.name)
        cfg = root / "config.yaml"
        cfg.write_text(json.dumps({
            "storage": {"backend": "r2", "cache_root": str(root / "data" / "raw"), "local_root": str(root / "st")},
            "sync": {"working_root": str(root / "data" / "working"), "archive_root": str(root / "data" / "archive"),
                     "parallel_transfers": args.workers},
            "budget": {"ledger_path": str(root / "data" / "ledger.sqlite")}}))
        os.environ.update(CLOUDFLARE_R2_ACCESS_KEY_ID=ACCESS_KEY, CLOUDFLARE_R2_SECRET_ACCESS_KEY=SECRET_KEY,
                          POSE_FACTORY_R2_BUCKET=bucket, POSE_FACTORY_S3_ENDPOINT_URL=proxy.url,
                          POSE_FACTORY_ENV_FILE=str(root / "none.env"))
        proxy.latency = args.latency

        client = boto3.client("s3", endpoint_url=proxy.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
        client.list_buckets()  # connection warm
        one = root / "one-by-one"
        t = time.perf_counter()
        for k in keys:
            path = one / k
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(client.get_object(Bucket=bucket, Key=k)["Body"].read())
        serial = time.perf_counter() - t

        t = time.perf_counter()
        first = run_cli(cfg, "pull", f"bench/{BID}")
        pull = time.perf_counter() - t
        assert first["fetched"] == len(keys), first
        print(f"1. pull of {len(keys)} files: one-by-one get_object {serial:.2f} s | pose_factory pull {pull:.2f} s "
              f"(manifest read + sha256 checks included) | {serial / pull:.1f}x (goal >= 4x)")

        t = time.perf_counter()
        second = run_cli(cfg, "pull", f"bench/{BID}")
        again = time.perf_counter() - t
        assert second["fetched"] == 0 and second["kept"] == len(keys), second
        print(f"2. second pull, nothing changed: {again:.2f} s, {second['fetched']} files fetched (goal < 1 s)")

        n = len(store.list("projects/bench/"))
        t = time.perf_counter()
        done = run_cli(cfg, "projects", "rename", "bench", "bench-renamed")
        ren = time.perf_counter() - t
        assert done["objects"] == n and store.list("projects/bench/") == [], done
        print(f"3. rename of a {n}-object project: {ren:.2f} s, {n / ren:.0f} objects/s "
              f"(server-side copy, ETag verify, delete; journal written first and removed last)")
    finally:
        proxy.stop()
        server.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
