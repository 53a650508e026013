"""Render-engine figures (issue 2): 8 poses x 4 views at 512x512 and 1024x1024 in one Blender
process per batch, against the naive way (one Blender process per view, same settings),
measured side by side in this run.

    .venv/bin/python bench/bench_render.py [--sizes 512,1024] [--no-naive]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import render  # noqa: E402

POSES = ["a_pose", "walk_left_step", "running", "sitting", "waving", "arms_crossed", "fighting_stance", "crouching"]


def spec_for(size, poses=POSES, cameras=None):
    s = {"schema_version": "1.0", "kind": "pose_batch", "project": "bench",
         "render": {"width": size, "height": size},
         "cameras": cameras or {"type": "orbit", "views": 4, "elevation": 10},
         "subjects": [{"type": "mannequin", "poses": list(poses)}]}
    return s


def one_batch(spec):
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        result = render.run_blender(render.spec_mod.normalize_spec(spec), work)
        return time.perf_counter() - t0, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--no-naive", action="store_true")
    a = ap.parse_args()
    print(f"{len(POSES)} poses x 4 views, Cycles on CPU, data passes at 1 sample through pixel centres")
    for size in [int(s) for s in a.sizes.split(",")]:
        wall, res = one_batch(spec_for(size))
        t = res["timings"]
        n = len(res["entries"])
        print(f"\n== {size}x{size}: one Blender process for the batch ({n} images)")
        print(f"  Blender start-up (once per batch) {t['startup']:6.2f} s   goal <= 3 s")
        print(f"  data passes per view              {t['data_passes'] / n:6.3f} s   goal <= 0.35 s")
        if t["shaded"]:
            print(f"  shaded render per view            {t['shaded'] / n:6.3f} s")
        else:
            print("  shaded reference                  from the data render's Combined pass (1 sample, edges smoothed)")
        print(f"  everything else per view          {t['other'] / n:6.3f} s   goal <= 0.1 s")
        print(f"  whole batch (wall)                {wall:6.2f} s")
        if a.no_naive:
            continue
        # the naive way: one process per (view, frame) with the batch's own cameras
        t0 = time.perf_counter()
        for cam in res["cameras"]:
            r = np.array(cam["rotation"])
            look_at = (np.array(cam["location"]) - r[:, 2]).tolist()
            explicit = {"type": "list", "cameras": [{"location": cam["location"], "look_at": look_at,
                                                     "focal_length": cam["focal_length"]}]}
            for pose in POSES:
                one_batch(spec_for(size, [pose], explicit))
        naive = time.perf_counter() - t0
        print(f"  naive: one process per view       {naive:6.2f} s   -> batch is {naive / wall:4.1f}x faster (goal >= 4x)")


if __name__ == "__main__":
    main()
