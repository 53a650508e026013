"""Extraction figures (issue 11), on this machine, from our own shaded renders (rendered first):
- MediaPipe pose extraction in images per second at 512×512, the model loaded once (as the
  worker keeps it), with and without the hand model;
- posture requests per second through the worker's own path (pod_worker.request.execute: base64
  decoding, validation, two detections, the angles), no HTTP;
- the extract job in images per second through the same path, side by side: inline (base64 images
  in, keypoint frames out, nothing stored) and stored (keys in storage in → keypoints, skeleton and
  source PNGs and the manifest written: a local folder, moto's S3 server on loopback, and moto
  behind a proxy adding 40 ms a request as R2 is far away), body only and with the face;
- PCK@0.1 and PCK@0.2 per preset (front and ±45° views; visible joints; torso size from the 3D
  joints), the figure render validation writes into a manifest.

    .venv/bin/python bench/bench_extract.py [--images 60] [--requests 20] [--no-s3]
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
    ap.add_argument("--no-s3", action="store_true", help="skip the stored job into moto's S3 server")
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

        stored_vs_inline(frames, Path(tmp), s3=not a.no_s3)

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


def stored_vs_inline(frames, tmp: Path, s3: bool = True) -> None:
    """Images per second of the extract job, inline and stored, through pod_worker.request.execute."""
    import os

    from pod_worker.request import execute
    from pose_factory.mesh.client import upload_views

    def run(job):
        t = time.perf_counter()
        out = asyncio.run(execute(job, lambda e: None))
        assert "error" not in out, out
        return len(frames) / (time.perf_counter() - t)

    frames = list(frames) * 2  # more images for a steadier figure
    b64s = [base64.b64encode(imageio.encode_png(f)).decode() for f in frames]
    stores = [("local folder", "local", None)]
    moto = proxy = None
    if s3:
        from tests.s3_support import ACCESS_KEY, SECRET_KEY, FaultProxy, MotoServer, make_bucket

        moto = MotoServer()
        proxy = FaultProxy(moto.port, latency=0.04)
        stores += [("moto S3 on loopback", moto.url, make_bucket(moto.url)),
                   ("moto S3 + 40 ms", proxy.url, make_bucket(moto.url))]
    try:
        for face in (False, True):
            asyncio.run(execute({"extract": {"images": b64s[:1], "face": face}}, lambda e: None))  # loads the models
            inline = run({"extract": {"images": b64s, "face": face}})
            line = f"extract job, {len(frames)} images 512x512{' with face' if face else ''}: inline {inline:.1f} img/s"
            for label, kind, bucket in stores:
                env = ({"POSE_FACTORY_STORAGE_ROOT": str(tmp / "extract_store")} if kind == "local" else
                       {"POSE_FACTORY_R2_BUCKET": bucket, "POSE_FACTORY_S3_ENDPOINT_URL": kind,
                        "CLOUDFLARE_R2_ACCESS_KEY_ID": ACCESS_KEY, "CLOUDFLARE_R2_SECRET_ACCESS_KEY": SECRET_KEY})
                os.environ.pop("POSE_FACTORY_R2_BUCKET", None)
                os.environ.update(env)
                from pod_worker.storage_env import storage_from_env

                keys = upload_views(storage_from_env(), "bench", frames)
                job = {"spec": {"kind": "extract", "openpose": {"face": face}}, "project": "bench", "images": keys,
                       "force": True}
                line += f", stored ({label}) {run(job):.1f} img/s"
            print(line + " (stored: read from storage, detect, draw, write 3 files an image + the manifest)")
    finally:
        if proxy is not None:
            proxy.stop()
        if moto is not None:
            moto.stop()
        for k in ("POSE_FACTORY_R2_BUCKET", "POSE_FACTORY_S3_ENDPOINT_URL", "CLOUDFLARE_R2_ACCESS_KEY_ID",
                  "CLOUDFLARE_R2_SECRET_ACCESS_KEY", "POSE_FACTORY_STORAGE_ROOT"):
            os.environ.pop(k, None)


if __name__ == "__main__":
    main()
