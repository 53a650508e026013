"""Time and peak memory of a loader refusing a PNG bomb (issue 10: goal under 0.1 s and 50 MB,
since only the header is read). A real, valid 30000x30000 8-bit RGB PNG of black pixels (about
2.6 MB, 2.7 GB decoded) is stored as a batch's openpose image with its true sha256 in the
manifest, in a local-folder storage; Load Pose Batch (the node's own load function) then refuses
it, first with the download into the cache, then from the cache. In a 512x512 batch the file's
size is plausible and its PNG header refuses it; in a 64x64 batch its declared size alone is more
than such an image can need, so it is refused before it is downloaded.

OpenCV and PyYAML are imported before the first call (a ComfyUI process showing the nodes has them). Peak memory: the rise of the process's peak resident set (VmHWM, reset before each call through
/proc/self/clear_refs; Linux) over what it held before the call, and tracemalloc's peak of the
Python and numpy allocations made during the call.

    .venv/bin/python bench/bench_png_bomb.py [--size 30000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
        return True
    except OSError:
        return False


def measure(fn):
    """(seconds, what fn raised, peak RSS rise in MB or None, tracemalloc peak in MB)."""
    can_reset = _reset_peak()
    rss0 = _status_kb("VmRSS")
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn()
        raised = None
    except Exception as e:  # noqa: BLE001  the refusal is what is measured
        raised = e
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    hwm = _status_kb("VmHWM")
    rise = (hwm - rss0) / 1024 if can_reset and hwm is not None and rss0 is not None else None
    return seconds, raised, rise, traced


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=30000, help="side of the PNG bomb in pixels")
    args = ap.parse_args()

    from tests.s3_support import png_bomb, png_bytes, write_batch

    t0 = time.perf_counter()
    bomb = png_bomb(args.size, args.size)
    print(f"PNG bomb: {args.size}x{args.size} 8-bit RGB, {len(bomb) / 1e6:.1f} MB on disk, "
          f"{args.size * args.size * 3 / 1e9:.1f} GB decoded (made in {time.perf_counter() - t0:.1f} s)")

    with tempfile.TemporaryDirectory(prefix="pf_bench_bomb_") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "config.yaml"
        cfg.write_text(json.dumps({"storage": {"local_root": str(tmp / "store"), "cache_root": str(tmp / "cache")}}))
        os.environ["POSE_FACTORY_CONFIG"] = str(cfg)
        os.environ["POSE_FACTORY_ENV_FILE"] = str(tmp / "no.env")

        from nodes.loader_nodes import PoseFactoryLoadPoseFromR2
        from pose_factory import settings as settings_mod
        from pose_factory.storage import LocalStorage

        import cv2  # noqa: F401  OpenCV and PyYAML imported once, as in a ComfyUI that shows the pack's nodes: not
        settings_mod.load_settings()  # part of the refusal

        store = LocalStorage(tmp / "store")
        for side, bid, what in ((512, "0123456789abcdef", "the header check"),
                                (64, "fedcba9876543210", "the manifest's file size, before any download")):
            frame = {"people": [{"pose_keypoints_2d": [10.0, 20.0, 1.0] * 18}],
                     "canvas_width": side, "canvas_height": side}
            write_batch(store, "bench", bid, {("openpose", 0, 0): bomb, ("shaded", 0, 0): png_bytes(1, side),
                                              ("keypoints", 0, 0): json.dumps(frame).encode()},
                        views=1, frames=1, width=side, height=side)
            print(f"\nthe bomb as the openpose image of a {side}x{side} batch (refused by {what}):")

            def load():
                return PoseFactoryLoadPoseFromR2().load("bench", bid, "all", "all", "view_major", True, True)

            for label in ("first load", "second load (the cache has what was fetched)"):
                seconds, raised, rise, traced = measure(load)
                rise_text = f"{rise:6.1f} MB" if rise is not None else "   n/a (not Linux)"
                print(f"  {label:44s} {seconds:7.3f} s   peak RSS rise {rise_text}   tracemalloc peak "
                      f"{traced:6.2f} MB   goal < 0.1 s, < 50 MB")
                print(f"    refused: {type(raised).__name__}: {raised}" if raised
                      else "    NOT REFUSED: the bomb was decoded")

if __name__ == "__main__":
    main()
