"""Render-engine figures (issue 2): 8 poses x 4 views at 512x512 and 1024x1024 in one Blender
process per batch, against the naive way (one Blender process per view, same settings),
measured side by side in this run. --against DIR renders the same batches with another checkout
of the pack (e.g. main's code), alternating with this one, so both sets of figures come from
one run on the same, equally busy machine. ``--calibrate`` instead fits the render-time model of
pose_factory/jobs/budget.py (RENDER_MODEL, the cost estimate) from five small batches and prints the
fit next to the model's estimate and the measured time of each.

    .venv/bin/python bench/bench_render.py [--sizes 512,1024] [--no-naive] [--against DIR] [--repeat N]
    .venv/bin/python bench/bench_render.py --calibrate
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import render, worker_process  # noqa: E402
from pose_factory.jobs import budget  # noqa: E402

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
    saved = worker_process.REPO_ROOT
    worker_process.REPO_ROOT = Path(repo).resolve() if repo else saved  # the child runs that checkout
    try:
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            result = render.run_blender(render.spec_mod.normalize_spec(spec), work)
            return time.perf_counter() - t0, result
    finally:
        worker_process.REPO_ROOT = saved


def figures(size, repo=None):
    wall, res = one_batch(spec_for(size), repo)
    t, n = res["timings"], len(res["entries"])
    return {"startup": t["startup"], "data": t["data_passes"] / n, "other": t["other"] / n, "wall": wall,
            "shaded": t["shaded"] / n}, res


CALIBRATION = {  # name: (size, passes or None for all, shaded_samples); 4 views x 2 poses each
    "A 256 all passes": (256, None, 1),
    "B 768 all passes": (768, None, 1),
    "C 768 openpose only": (768, ["openpose"], 1),
    "D 512 shaded 4 samples": (512, None, 4),
    "E 512 shaded 32 samples": (512, None, 32),
}


def calibrate():
    """Renders the CALIBRATION batches, fits budget.RENDER_MODEL's terms, prints both."""
    runs = {}
    for name, (size, passes, samples) in CALIBRATION.items():
        spec = spec_for(size, POSES[:2])
        spec["render"].update({"shaded_samples": samples}, **({"passes": passes} if passes else {}))
        norm = render.spec_mod.normalize_spec(spec)
        wall, res = one_batch(spec)
        t, n = res["timings"], len(res["entries"])
        runs[name] = {"size": render.spec_mod.job_size(norm), "wall": wall, "n": n, "mp": size * size / 1e6,
                      "data": t["data_passes"] / n, "other": t["other"] / n, "shaded": t["shaded"] / n,
                      "fixed": wall - t["data_passes"] - t["other"] - t["shaded"]}
        r = runs[name]
        print(f"{name:26s} wall {wall:6.2f} s  per image: data {r['data']:.3f} s, other {r['other']:.3f} s, "
              f"shaded {r['shaded']:.3f} s; fixed {r['fixed']:.2f} s")
    A, B, C, D, E = runs.values()
    data_slope = (B["data"] - A["data"]) / (B["mp"] - A["mp"])
    files_b, files_c = B["size"]["files_per_image"], C["size"]["files_per_image"]
    file_slope = (B["other"] - C["other"]) / ((files_b - files_c) * B["mp"])
    sample_slope = (E["shaded"] - D["shaded"]) / (D["mp"] * (32 - 4))
    model = {
        "startup_s": sorted(r["fixed"] for r in runs.values())[len(runs) // 2],
        "image_s": (A["data"] - A["mp"] * data_slope) + (B["other"] - files_b * B["mp"] * file_slope),
        "data_s_per_mp": data_slope,
        "file_s_per_mp": file_slope,
        "shaded_image_s": max(0.0, D["shaded"] - D["mp"] * 4 * sample_slope),
        "sample_s_per_mp": sample_slope,
    }
    print("\nfitted RENDER_MODEL (pose_factory/jobs/budget.py holds):")
    for k, v in model.items():
        print(f"  {k:16s} {v:8.4f}   (in budget.py: {budget.RENDER_MODEL[k]:.4f})")
    print("\nrun                        measured   fitted model   budget.py model")
    for name, r in runs.items():
        print(f"{name:26s} {r['wall']:7.2f} s  {budget.estimate_render_seconds(r['size'], model):9.2f} s  "
              f"{budget.estimate_render_seconds(r['size']):12.2f} s")
    big = render.spec_mod.job_size(render.spec_mod.normalize_spec(
        {"render": {"width": 2048, "height": 2048, "shaded_samples": 1024},
         "cameras": {"type": "orbit", "views": 64}, "subjects": [{"poses": ["a_pose"] * 256}]}))
    print(f"\nissue 10's example, by budget.py's model: {budget.describe_size(big, budget.estimate_render_seconds(big))}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument("--calibrate", action="store_true", help="fit budget.RENDER_MODEL instead")
    ap.add_argument("--against", metavar="DIR", help="another checkout of the pack, measured alternately")
    ap.add_argument("--repeat", type=int, default=1, help="batches per size and checkout (medians shown)")
    a = ap.parse_args()
    if a.calibrate:
        return calibrate()
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
