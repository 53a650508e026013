"""Render-engine figures (issue 2): 8 poses x 4 views at 512x512 and 1024x1024 in one Blender
process per batch, against the naive way (one Blender process per view, same settings),
measured side by side in this run. --against DIR renders the same batches with another checkout
of the pack (e.g. main's code), alternating with this one, so both sets of figures come from
one run on the same, equally busy machine.

    .venv/bin/python bench/bench_render.py [--sizes 512,1024] [--no-naive] [--against DIR] [--repeat N]
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import render  # noqa: E402

POSES = ["a_pose", "walk_left_step", "running", "sitting", "waving", "arms_crossed", "fighting_stance", "crouching"]
FIGURES = (("startup", "Blender start-up (once per batch)", "s", "goal <= 3 s"),
           ("data", "data passes per view", "s", "goal <= 0.35 s"),
           ("other", "everything else per view", "s", "goal <= 0.1 s"),
           ("wall", "whole batch (wall)", "s", ""))


def spec_for(size, poses=POSES, cameras=None):
    s = {"schema_version": "1.0", "kind": "pose_batch", "project": "bench",
         "render": {"width": size, "height": size},
         "cameras": cameras or {"type": "orbit", "views": 4, "elevation": 10},
         "subjects": [{"type": "mannequin", "poses": list(poses)}]}
    return s


def one_batch(spec, repo=None):
    """(wall seconds, result) of one batch, rendered by this checkout's code or by repo's."""
    saved = render.REPO_ROOT
    render.REPO_ROOT = Path(repo).resolve() if repo else saved  # the child runs that checkout
    try:
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            result = render.run_blender(render.spec_mod.normalize_spec(spec), work)
            return time.perf_counter() - t0, result
    finally:
        render.REPO_ROOT = saved


def figures(size, repo=None):
    wall, res = one_batch(spec_for(size), repo)
    t, n = res["timings"], len(res["entries"])
    return {"startup": t["startup"], "data": t["data_passes"] / n, "other": t["other"] / n, "wall": wall,
            "shaded": t["shaded"] / n}, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument("--against", metavar="DIR", help="another checkout of the pack, measured alternately")
    ap.add_argument("--repeat", type=int, default=1, help="batches per size and checkout (medians shown)")
    a = ap.parse_args()
    print(f"{len(POSES)} poses x 4 views, Cycles on CPU, data passes at 1 sample through pixel centres")
    for size in [int(s) for s in a.sizes.split(",")]:
        runs = {"this": [], "against": []}
        for _ in range(a.repeat):
            f, res = figures(size)
            runs["this"].append(f)
            if a.against:
                runs["against"].append(figures(size, a.against)[0])
        med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items() if v}
        n = len(res["entries"])
        print(f"\n== {size}x{size}: one Blender process for the batch ({n} images), median of {a.repeat}")
        head = f"  {'':34s} {'this':>8s}" + (f" {'against':>8s}" if a.against else "")
        print(head)
        for key, label, unit, goal in FIGURES:
            row = f"  {label:34s} {med['this'][key]:7.3f}{unit}"
            if a.against:
                row += f" {med['against'][key]:7.3f}{unit}"
            print(row + (f"   {goal}" if goal else ""))
        if med["this"]["shaded"]:
            print(f"  shaded render per view             {med['this']['shaded']:7.3f}s")
        else:
            print("  shaded reference                  from the data render's Combined pass (1 sample, edges smoothed)")
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
        wall = med["this"]["wall"]
        print(f"  naive: one process per view       {naive:6.2f} s   -> batch is {naive / wall:4.1f}x faster (goal >= 4x)")


if __name__ == "__main__":
    main()
