"""Submit-to-manifest time of the local job client on a 4-view batch (512x512, 1 pose), with the
worker cold (a new worker process: Python, the core, a Blender child) and warm (the same worker
again: its standby Blender child has imported bpy already). Runs alternate cold and warm, side
by side, so the machine's noise falls on both.

    .venv/bin/python bench/bench_client.py [--rounds 3] [--size 512]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pose_factory import settings as settings_mod  # noqa: E402
from pose_factory.jobs import client  # noqa: E402


def spec(size: int) -> dict:
    return {"schema_version": "1.0", "kind": "pose_batch", "render": {"width": size, "height": size},
            "cameras": {"type": "orbit", "views": 4, "elevation": 10},
            "subjects": [{"type": "mannequin", "poses": ["waving"]}]}


def timed(c, size: int) -> float:
    t0 = time.perf_counter()
    res = c.run(spec(size), project="bench", force=True)
    assert res.rendered and len(res.manifest["entries"]) == 4
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        s = settings_mod.load_settings(overrides={"storage": {"local_root": f"{tmp}/store", "cache_root": f"{tmp}/cache"}})
        env = settings_mod.load_env()
        cold, warm = [], []
        for _ in range(a.rounds):
            c = client.LocalClient(s, env)
            cold.append(timed(c, a.size))  # starts the worker
            time.sleep(2)  # let the worker's next standby Blender child finish importing
            warm.append(timed(c, a.size))
            c.close()
    print(f"local client, 4 views at {a.size}x{a.size}, submit to manifest ({a.rounds} rounds, median):")
    print(f"  cold worker: {statistics.median(cold):.2f} s  (runs: {', '.join(f'{x:.2f}' for x in cold)})")
    print(f"  warm worker: {statistics.median(warm):.2f} s  (runs: {', '.join(f'{x:.2f}' for x in warm)})")
    print(f"  warm is {statistics.median(cold) / statistics.median(warm):.2f}x faster")


if __name__ == "__main__":
    main()
