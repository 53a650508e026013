"""The job estimate against the measured time (issue 21.10), on this machine, cold and warm: a few
real renders through the local worker (pose_factory.jobs.client.run_job, the path Request Pose Batch
takes), in a scratch data root and ledger that start empty. Before each job the estimate is taken as
the node shows it (client.estimate: learned from the renders measured so far, the worker's start
added when it is not running); then the job runs and its wall time is printed beside it.

    .venv/bin/python bench/bench_estimate.py [--size 512] [--views 4]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import render, settings as settings_mod  # noqa: E402
from pose_factory.jobs import client  # noqa: E402

POSES = ["a_pose", "waving", "walk_left_step", "running", "sitting", "t_pose", "cheering", "lunge"]


def spec(size, views, poses, passes=None):
    raw = {"schema_version": "1.0", "kind": "pose_batch", "project": "bench-estimate",
           "render": {"width": size, "height": size, **({"passes": passes} if passes else {})},
           "cameras": {"type": "orbit", "views": views, "elevation": 10},
           "subjects": [{"type": "mannequin", "poses": poses}]}
    return render.prepare(raw, "bench-estimate")[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--views", type=int, default=4)
    a = ap.parse_args(argv)
    s, v = a.size, a.views
    jobs = [  # (label, spec, close the worker first)
        ("1 cold, first ever", spec(s, v, POSES[:2]), True),
        ("2 warm, same size", spec(s, v, POSES[2:4]), False),
        ("3 warm, same size", spec(s, v, POSES[4:6]), False),
        ("4 warm, 2x the poses", spec(s, v, POSES[:2] + ["standing", "kneeling"]), False),
        ("5 cold again", spec(s, v, POSES[6:8]), True),
        ("6 warm, openpose only", spec(s, v, POSES[1:3], ["openpose", "keypoints"]), False),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_estimate_") as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(json.dumps({"data_root": f"{tmp}/data", "storage": {"backend": "local", "local_root": f"{tmp}/store",
                                                                          "cache_root": f"{tmp}/cache"},
                                   "budget": {"ledger_path": f"{tmp}/ledger.sqlite"}}))
        settings, env = settings_mod.load_settings(str(cfg)), settings_mod.load_env()
        try:
            for label, job, cold in jobs:
                if cold:
                    client.close_clients()
                est = client.estimate(job, settings, "local", env)
                t0 = time.perf_counter()
                client.run_job(job, backend="local", settings=settings, env=env)
                took = time.perf_counter() - t0
                guess = est["seconds"] + est["cold_s"]
                rows.append((label, f"{est['size']['images']} img", guess, took, est["basis"]
                             + (f"; start: {est['cold_basis']}" if est["cold_s"] else "")))
                print(f"{label:24s} {rows[-1][1]:>7s}  estimate {guess:6.1f} s  measured {took:6.1f} s  "
                      f"({rows[-1][4]})", flush=True)
        finally:
            client.close_clients()
    print(f"\n{s}x{s}, {v} views, every pass unless said; estimate = render + the worker's start when cold")
    print(f"{'job':24s} {'images':>7s} {'estimate':>9s} {'measured':>9s} {'est/meas':>8s}  basis")
    for label, n, guess, took, basis in rows:
        print(f"{label:24s} {n:>7s} {guess:8.1f}s {took:8.1f}s {guess / took:8.2f}  {basis}")


if __name__ == "__main__":
    main()
