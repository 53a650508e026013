"""Extraction figures (issue 11), on this machine, from our own shaded renders (rendered first):
- MediaPipe pose extraction in images per second at 512×512, the model loaded once (as the
  worker keeps it), with and without the hand model;
- posture requests per second through the worker's own path (pod_worker.request.execute: base64
  decoding, validation, two detections, the angles), no HTTP;
- PCK@0.1 and PCK@0.2 per preset (front and ±45° views; visible joints; torso size from the 3D
  joints), the figure render validation writes into a manifest.

    .venv/bin/python bench/bench_extract.py [--images 60] [--requests 20]
"""
import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import imageio, render, storage as storage_mod  # noqa: E402
from pose_factory.extract import mediapipe_to_openpose  # noqa: E402
from pose_factory.extract.detector import Detector  # noqa: E402
from pose_factory.extract.validation import THRESHOLDS, image_hits, torso_size  # noqa: E402

PRESETS = ["standing", "walk_left_step", "running", "sitting", "waving", "arms_crossed", "reaching_forward",
           "squatting"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--requests", type=int, default=20)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        store = storage_mod.LocalStorage(tmp)
        spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "bench",
                "render": {"width": 512, "height": 512, "passes": ["keypoints", "shaded"]},
                "cameras": {"type": "orbit", "views": 8, "elevation": 10, "start_azimuth": 0},
                "subjects": [{"type": "mannequin", "poses": PRESETS}]}
        manifest, _ = render.render_batch(spec, store)
        folder = Path(tmp) / storage_mod.batch_prefix("bench", manifest["batch_id"])
        entries = [e for e in manifest["entries"] if e["view"] in (0, 1, 7)]  # front, ±45°
        images = {(e["view"], e["frame"]): imageio.read_png(str(folder / e["files"]["shaded"]["key"]))
                  for e in entries}
        frames = [images[k] for k in sorted(images)]

        for hands in (False, True):
            det = Detector(hands=hands)
            det.detect(frames[0])  # the first call builds the graph
            t = time.perf_counter()
            for i in range(a.images):
                det.detect(frames[i % len(frames)])
            rate = a.images / (time.perf_counter() - t)
            print(f"extraction at 512x512{' with hands' if hands else ''}: {rate:.1f} img/s "
                  f"({a.images} images, {det.backend} backend, model loaded once){'  goal >= 25' if not hands else ''}")
            det.close()

        from pod_worker.request import execute
        def b64(view):  # the first preset from that view (orbit view 2 is the side, azimuth 90°)
            e = next(e for e in manifest["entries"] if e["view"] == view and e["frame"] == 0)
            return base64.b64encode((folder / e["files"]["shaded"]["key"]).read_bytes()).decode()

        body = {"front": b64(0), "side": b64(2)}
        assert asyncio.run(execute(body, lambda e: None))["status"] == "success"  # loads the model
        t = time.perf_counter()
        for _ in range(a.requests):
            asyncio.run(execute(body, lambda e: None))
        print(f"posture: {a.requests / (time.perf_counter() - t):.1f} requests/s (two 512x512 PNGs each, "
              f"in the worker's path, no HTTP)")

        det = Detector()
        print("PCK per preset (front and ±45° views, visible joints):")
        for f, name in enumerate(PRESETS):
            seen_n, hits_n = 0, np.zeros(len(THRESHOLDS))
            for e in (e for e in entries if e["frame"] == f):
                img = images[(e["view"], e["frame"])]
                d = det.detect(img)
                theirs = None if d is None else mediapipe_to_openpose(d.landmarks, 512, 512)[0]
                seen, hits = image_hits(theirs, json.loads((folder / e["files"]["keypoints"]["key"]).read_text()),
                                        torso_size(manifest, e["view"], e["frame"]))
                seen_n, hits_n = seen_n + seen.sum(), hits_n + hits.sum(axis=1)
            print(f"  {name:18s} " + "  ".join(f"PCK@{t}: {h / seen_n:.3f}" for t, h in zip(THRESHOLDS, hits_n))
                  + f"  ({seen_n} joints)")


if __name__ == "__main__":
    main()
