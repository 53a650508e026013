"""posture: the founding documents' posture API (DESIGN.md §7; pose_factory/extract/posture.py).
Its input is the contract's own (no JobSpec, nothing stored): a front and a side image in base64
→ the angles, or {"status": "error", "message": …} for every bad input."""
from __future__ import annotations

import asyncio

import numpy as np

from pod_worker.jobs.extract import detector
from pose_factory.extract import mediapipe_to_openpose
from pose_factory.extract import posture as P
from pose_factory.extract.detector import ExtractorUnavailable

MARGIN = 0.10  # of each side, added all round (edge pixels repeated) before detecting


def with_margin(img: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The image with room around the person: MediaPipe squeezes some standing profiles that fill
    the frame into the upper body (docs/extraction.md, "Accuracy"); the margin prevents it."""
    mx, my = round(MARGIN * img.shape[1]), round(MARGIN * img.shape[0])
    return np.pad(img, ((my, my), (mx, mx), (0, 0)), mode="edge"), mx, my


async def run(job_input: dict, *, report) -> dict:
    try:
        front_b64, side_b64, want_points = P.request_images(job_input)
        images = {"front": P.decode_image(front_b64, "front"), "side": P.decode_image(side_b64, "side")}
    except P.PostureError as e:
        return P.error(str(e))
    try:
        det = detector(hands=False)
    except ExtractorUnavailable as e:
        return P.error(f"Pose extraction is unavailable on this worker: {e}")
    report({"state": "extracting", "done": 0, "total": 2})
    points = {}
    for i, (view, img) in enumerate(images.items()):
        padded, mx, my = with_margin(img)
        found = await asyncio.to_thread(det.detect, padded)
        if found is None:
            return P.error(f"{P.DETECT_ERROR} in the {view} image (no person found)")
        # every landmark, whatever MediaPipe's visibility: a profile's far side is estimated;
        # pixels of the image sent (the margin taken off)
        pts, _ = mediapipe_to_openpose(found.landmarks, padded.shape[1], padded.shape[0], min_visibility=0.0)
        points[view] = pts - [mx, my]
        report({"state": "extracting", "done": i + 1, "total": 2})
    out = P.success(P.front_angles(points["front"]), P.side_angles(points["side"]))
    out["backend"] = det.backend
    if want_points:
        out["points"] = {f"{v}_view": [[round(float(c), 2) for c in p] for p in pts] for v, pts in points.items()}
    report({"state": "completed", "done": 2, "total": 2})
    return out
