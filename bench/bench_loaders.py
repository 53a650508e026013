"""Times the two loader nodes on a batch of 8 views at 512x512 served from the local cache (goal:
each <= 0.3 s), then the same batch from an S3 server (moto) behind a proxy adding 40 ms per
request, as R2 is tens of ms away: the first load downloads, later ones read the cache. Renders
the batch once in a temp folder first (bpy).

    .venv/bin/python bench/bench_loaders.py [--views 8] [--size 512] [--frames 1] [--runs 7] [--latency 0.04]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, runs: int) -> list[float]:
    """Seconds of each of runs calls of fn."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=1)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--latency", type=float, default=0.04)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pf_bench_loaders_") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "config.yaml"
        cfg.write_text(json.dumps({"storage": {"local_root": str(tmp / "store"), "cache_root": str(tmp / "cache")},
                                   "budget": {"ledger_path": str(tmp / "ledger.sqlite")}}))
        os.environ["POSE_FACTORY_CONFIG"] = str(cfg)
        (tmp / "comfy_temp").mkdir()

        from pose_factory.render import render_batch
        from pose_factory.storage import LocalStorage

        poses = ["a_pose", "waving", "walk_left_step", "sitting"] * 64
        spec = {"render": {"width": args.size, "height": args.size},
                "cameras": {"type": "orbit", "views": args.views, "elevation": 10},
                "subjects": [{"type": "mannequin", "poses": poses[:args.frames]}]}
        t0 = time.perf_counter()
        manifest, _ = render_batch(spec, LocalStorage(tmp / "store"), project="bench")
        print(f"rendered {args.views} views x {args.frames} frames at {args.size}x{args.size} "
              f"in {time.perf_counter() - t0:.1f} s (batch {manifest['batch_id']})")

        from nodes.loader_nodes import PoseFactoryDepthNormalLoader, PoseFactoryLoadPoseFromR2

        common = dict(project="bench", batch_id=manifest["batch_id"], views="all", frames="all", order="view_major")
        cases = {
            "LoadPoseFromR2": lambda: PoseFactoryLoadPoseFromR2().load(**common, hands=True, face=True),
            "LoadPoseFromR2 hands off (redraw)": lambda: PoseFactoryLoadPoseFromR2().load(**common, hands=False,
                                                                                          face=True),
            "DepthNormalLoader batch depth": lambda: PoseFactoryDepthNormalLoader().load(
                **common, depth_range="batch", normal_convention="controlnet", parts="hands"),
            "DepthNormalLoader image depth": lambda: PoseFactoryDepthNormalLoader().load(
                **common, depth_range="image", normal_convention="opengl", parts="hands, head"),
        }
        for name, fn in cases.items():
            (first,) = timed(fn, 1)
            times = timed(fn, args.runs)
            print(f"{name:38s} first (download) {first:6.3f} s   cached median {statistics.median(times):6.3f} s "
                  f"min {min(times):6.3f} s")
        # with the preview grid ComfyUI shows (written to its temp folder)
        sys.modules["folder_paths"] = types.SimpleNamespace(get_temp_directory=lambda: str(tmp / "comfy_temp"))
        times = timed(cases["LoadPoseFromR2"], args.runs)
        print(f"{'LoadPoseFromR2 + preview grid':38s} {'':22s}cached median {statistics.median(times):6.3f} s "
              f"min {min(times):6.3f} s")
        del sys.modules["folder_paths"]
        s3_loads(tmp, manifest, common, args)


def s3_loads(tmp: Path, manifest: dict, common: dict, args) -> None:
    """The same loaders with storage on an S3 server behind the latency proxy."""
    import shutil

    from nodes.loader_nodes import PoseFactoryDepthNormalLoader, PoseFactoryLoadPoseFromR2
    from pose_factory import storage as S
    from tests.s3_support import ACCESS_KEY, SECRET_KEY, FaultProxy, MotoServer, make_bucket, s3_storage

    server = MotoServer()
    proxy = FaultProxy(server.port, latency=0.0)
    try:
        bucket = make_bucket(server.url)
        store, local = s3_storage(proxy.url, bucket), S.LocalStorage(tmp / "store")
        prefix = S.batch_prefix("bench", manifest["batch_id"])
        for key in local.list(prefix):  # files first, the manifest last, as a worker writes them
            if not key.endswith(S.MANIFEST_NAME):
                store.put_file(key, local.local_path(key))
        store.put_bytes(prefix + S.MANIFEST_NAME, local.get_bytes(prefix + S.MANIFEST_NAME))
        (tmp / "s3.yaml").write_text(json.dumps({"storage": {"backend": "r2", "cache_root": str(tmp / "cache_s3")},
                                                 "budget": {"ledger_path": str(tmp / "ledger.sqlite")}}))
        os.environ.update(POSE_FACTORY_CONFIG=str(tmp / "s3.yaml"), POSE_FACTORY_S3_ENDPOINT_URL=proxy.url,
                          POSE_FACTORY_R2_BUCKET=bucket, CLOUDFLARE_R2_ACCESS_KEY_ID=ACCESS_KEY,
                          CLOUDFLARE_R2_SECRET_ACCESS_KEY=SECRET_KEY)
        proxy.latency = args.latency
        loaders = {
            "LoadPoseFromR2": lambda: PoseFactoryLoadPoseFromR2().load(**common, hands=True, face=True),
            "DepthNormalLoader": lambda: PoseFactoryDepthNormalLoader().load(
                **common, depth_range="batch", normal_convention="controlnet", parts="hands"),
        }
        print(f"from S3 through a proxy adding {args.latency * 1000:.0f} ms per request:")
        for round_ in range(2):
            shutil.rmtree(tmp / "cache_s3", ignore_errors=True)
            for name, fn in loaders.items():
                first, again = timed(fn, 2)
                print(f"  round {round_ + 1} {name:20s} first load (downloads) {first:6.3f} s   "
                      f"second load (cache) {again:6.3f} s")
    finally:
        proxy.stop()
        server.stop()


if __name__ == "__main__":
    main()
