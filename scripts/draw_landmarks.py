"""Draws what MediaPipe finds on a photo: its OpenPose skeleton (our drawing) over the image.
Runs in the worker environment (MediaPipe); says which backend ran, or why none could.

    .venv/bin/python scripts/draw_landmarks.py photo.jpg out.png [--hands] [--face]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import imageio  # noqa: E402
from pose_factory.render import openpose  # noqa: E402
from pose_factory.extract import detection_frame  # noqa: E402
from pose_factory.extract.detector import Detector, ExtractorUnavailable  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("out")
    ap.add_argument("--hands", action="store_true")
    ap.add_argument("--face", action="store_true", help="OpenPose's 70 face points from MediaPipe's face mesh")
    a = ap.parse_args(argv)
    from PIL import Image, ImageOps

    rgb = np.asarray(ImageOps.exif_transpose(Image.open(a.image)).convert("RGB"))
    try:
        det = Detector(hands=a.hands, face=a.face)
    except ExtractorUnavailable as e:
        print(f"no MediaPipe backend: {e}", file=sys.stderr)
        return 2
    found = det.detect(rgb)
    h, w = rgb.shape[:2]
    if found is None:
        print(f"no person found in {a.image} ({det.backend} backend)", file=sys.stderr)
        return 1
    frame = detection_frame(found, w, h)
    imageio.write_png(a.out, openpose.draw_pose(frame, face=a.face, canvas=np.ascontiguousarray(rgb)))
    n = int(np.array(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)[:, 2].sum())
    face = "" if not a.face else f", {len(frame['people'][0]['face_keypoints_2d']) // 3} face points"
    print(f"{a.out}: {n} of 18 body points{face} ({det.backend} backend, {det.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
