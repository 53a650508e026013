"""Pose From Photo's fit (pose_factory/extract/fit.py) in seconds a person, on this machine: our own
shaded renders of FIT presets (real bpy, 512², front view), MediaPipe once per image, then the fit
timed alone (its four stage-1 starts and stage 2), with and without the visibility cut's weights.
The figure the budget's estimate takes (extract/batch.py FIT_S) must stay above the worst.

    .venv/bin/python bench/bench_fit.py [--repeat 2]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import imageio, render, storage as storage_mod  # noqa: E402
from pose_factory.extract import batch  # noqa: E402
from pose_factory.extract.fit import fit_world_landmarks  # noqa: E402
from pose_factory.extract.mapping import MIN_VISIBILITY  # noqa: E402

PRESETS = ["standing", "walk_left_step", "waving", "reaching_forward", "a_pose", "t_pose", "hands_on_hips"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    from pose_factory.extract.detector import Detector

    with tempfile.TemporaryDirectory(prefix="pf-fitbench-") as root:
        store = storage_mod.LocalStorage(root)
        spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "fit-bench",
                "render": {"width": 512, "height": 512, "passes": ["shaded"]},
                "cameras": {"type": "orbit", "views": 1, "elevation": 0, "start_azimuth": 0},
                "subjects": [{"type": "mannequin", "poses": PRESETS}]}
        manifest, _ = render.render_batch(spec, store)
        folder = Path(root) / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
        images = [imageio.read_png(str(folder / e["files"]["shaded"]["key"])) for e in manifest["entries"]]
    det = Detector()
    found = [det.detect(img) for img in images]
    det.close()
    print(f"fit of one person, {len(images)} front renders at 512², {args.repeat} runs each "
          f"(budget estimate FIT_S = {batch.FIT_S} s)")
    for label, cut in (("no cut weights", None), (f"visibility_cut {MIN_VISIBILITY:g}", MIN_VISIBILITY)):
        times = []
        for d in found:
            if d is None:
                continue
            for _ in range(args.repeat):
                t = time.perf_counter()
                fit_world_landmarks(d.world, d.landmarks, 512, 512, cut)
                times.append(time.perf_counter() - t)
        t = np.array(times)
        print(f"  {label}: median {np.median(t):.2f} s, mean {t.mean():.2f} s, max {t.max():.2f} s "
              f"({len(t)} fits)")


if __name__ == "__main__":
    main()
