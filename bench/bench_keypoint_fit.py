"""Pose From Keypoints: fits per second from one view (camera estimated) and from two views
(cameras given), on the body keypoints of a few presets projected by the camera model at 512x512.

    .venv/bin/python bench/bench_keypoint_fit.py [--presets standing,sitting,reaching_forward]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pose_factory.extract import keypoint_fit as kf  # noqa: E402
from pose_factory.render import cameras, poses  # noqa: E402

SIZE = 512
CAMS = [{"location": [-2.25, -3.9, 1.6], "look_at": [0, 0, 0.9]}, {"location": [2.25, -3.9, 1.6], "look_at": [0, 0, 0.9]}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="standing,sitting,reaching_forward")
    args = ap.parse_args()
    cams = kf.cameras_from_spec({"type": "list", "cameras": CAMS}, SIZE, SIZE)
    ok = np.ones(18, bool)
    kf.body_keypoints({})  # the mannequin's keypoints, built once, outside the timing
    for n_views in (1, 2):
        t0, fits, px = time.perf_counter(), 0, []
        for name in args.presets.split(","):
            pts = kf.body_keypoints(poses.pose_angles(name)[0])
            views = [(cameras.project(c, pts)[0], ok, SIZE, SIZE) for c in cams[:n_views]]
            r = kf.fit_keypoints(views, None if n_views == 1 else cams)
            fits += 1
            px.append(r["median_px"])
        dt = time.perf_counter() - t0
        print(f"{n_views} view{'s' if n_views > 1 else ''}: {fits / dt:.3f} fits/s ({dt / fits:.2f} s a fit, "
              f"median reprojection {np.median(px):.2f} px)")


if __name__ == "__main__":
    main()
