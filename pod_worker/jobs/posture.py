"""posture: the founding documents' posture API (DESIGN.md §7; pose_factory/extract/posture.py).
Its input is the contract's own (no JobSpec, nothing stored): a front and a side image in base64
→ the angles, or {"status": "error", "message": …} for every bad input."""
from __future__ import annotations

import asyncio

from pod_worker.jobs.extract import detector
from pose_factory.extract import mediapipe_to_openpose
from pose_factory.extract import posture as P
from pose_factory.extract.detector import ExtractorUnavailable


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
        found = await asyncio.to_thread(det.detect, img)
        if found is None:
            return P.error(f"{P.DETECT_ERROR} in the {view} image (no person found)")
        # every landmark, whatever MediaPipe's visibility: a profile's far side is estimated
        points[view], _ = mediapipe_to_openpose(found.landmarks, img.shape[1], img.shape[0], min_visibility=0.0)
        report({"state": "extracting", "done": i + 1, "total": 2})
    out = P.success(P.front_angles(points["front"]), P.side_angles(points["side"]))
    out["backend"] = det.backend
    if want_points:
        out["points"] = {f"{v}_view": [[round(float(c), 2) for c in p] for p in pts] for v, pts in points.items()}
    report({"state": "completed", "done": 2, "total": 2})
    return out
