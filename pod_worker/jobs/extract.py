"""extract: MediaPipe pose landmarks from images sent inline (what the Extract Pose node sends
the local worker) → one POSE_KEYPOINT frame per image (DESIGN.md §5), plus MediaPipe's world
landmarks for Pose From Photo. Nothing is stored.

    input:  {"extract": {"images": ["<base64 PNG or JPEG>", ...], "hands": false, "face": false,
                         "world": false, "fit": false, "visibility_cut": 0.5}}
            (visibility_cut: optional, 0..1, default mapping.MIN_VISIBILITY: a body point MediaPipe
            gives less visibility is written not found, kept in our own field "dropped"; the
            fit weights such points low in the image term)
    output: {"frames": [<POSE_KEYPOINT frame>, ...], "found": [true, ...], "backend": "solutions",
             "world": [[[x, y, z, visibility] * 33] or null, ...]   (with "world": true)
             "fits": [{"pose": <pose entry>, "residual_deg": {bone: deg}, "median_deg": d} or null, ...]}
                                                                    (with "fit": true: Pose From Photo)

An image with no person gives a frame with no people and found false. The detector is loaded
once per worker process and kept (one per hands and face setting).

A stored extract (images in storage or at URLs → a batch with a manifest) is a JobSpec of kind
"extract": pod_worker/jobs/extract_batch.py.
"""
from __future__ import annotations

import asyncio

from pose_factory.extract import detection_frame
from pose_factory.extract.mapping import MIN_VISIBILITY, check_visibility_cut
from pose_factory.extract import posture as P
from pose_factory.extract.detector import Detector, ExtractorUnavailable
from pose_factory.extract.fit import fit_world_landmarks
from pose_factory.errors import echo

MAX_IMAGES = 256
FLAGS = ("hands", "face", "world", "fit")
_detectors: dict = {}


def detector(hands: bool, face: bool = False) -> Detector:
    """This process's detector (loaded on first use); ExtractorUnavailable when none can run."""
    if (hands, face) not in _detectors:
        _detectors[hands, face] = Detector(hands=hands, face=face)
    return _detectors[hands, face]


class ExtractInputError(ValueError):
    pass


def parse(job_input) -> dict:
    req = job_input.get("extract") if isinstance(job_input, dict) else None
    if not isinstance(req, dict) or set(job_input) != {"extract"}:
        raise ExtractInputError("input.extract: expected {\"images\": [base64, ...], \"hands\": bool, "
                                "\"face\": bool, \"world\": bool, \"fit\": bool} as the only field")
    unknown = sorted(set(req) - {"images", "visibility_cut", *FLAGS}, key=str)
    if unknown:
        raise ExtractInputError(f"input.extract.{echo(unknown[0], 60)}: unknown field, allowed: images, "
                                f"{', '.join(FLAGS)}, visibility_cut")
    images = req.get("images")
    if not isinstance(images, list) or not 1 <= len(images) <= MAX_IMAGES:
        raise ExtractInputError(f"input.extract.images: expected a list of 1 to {MAX_IMAGES} base64 images, "
                                f"got {echo(images) if not isinstance(images, list) else f'{len(images)} images'}")
    for key in FLAGS:
        if not isinstance(req.get(key, False), bool):
            raise ExtractInputError(f"input.extract.{key}: got {echo(req.get(key))}, allowed: true or false")
    try:
        cut = check_visibility_cut(req.get("visibility_cut", MIN_VISIBILITY), "input.extract.visibility_cut")
    except ValueError as e:
        raise ExtractInputError(str(e)) from None
    return {"images": images, "visibility_cut": cut, **{key: req.get(key, False) for key in FLAGS}}


async def run(job_input: dict, *, report) -> dict:
    try:
        req = parse(job_input)
        decoded = []
        for i, b64 in enumerate(req["images"]):
            decoded.append(P.decode_image(b64, f"images[{i}]"))
    except (ExtractInputError, P.PostureError) as e:
        return {"error": str(e)}
    try:
        det = detector(req["hands"], req["face"])
    except ExtractorUnavailable as e:
        return {"error": f"extract: {e}"}
    frames, found, world, fits = [], [], [], []
    report({"state": "extracting", "done": 0, "total": len(decoded)})
    for i, img in enumerate(decoded):
        d = await asyncio.to_thread(det.detect, img)
        h, w = img.shape[:2]
        frames.append(detection_frame(d, w, h, req["visibility_cut"]))
        found.append(d is not None)
        world.append(None if d is None else [[round(float(c), 5) for c in p] for p in d.world])
        if req["fit"]:
            fits.append(None if d is None else await asyncio.to_thread(fit_world_landmarks, d.world, d.landmarks, w, h,
                                                                    req["visibility_cut"]))
        report({"state": "extracting", "done": i + 1, "total": len(decoded)})
    out = {"frames": frames, "found": found, "backend": det.backend, "model": det.model}
    if det.hands_note:
        out["note"] = det.hands_note
    if req["world"]:
        out["world"] = world
    if req["fit"]:
        out["fits"] = fits
    report({"state": "completed", "done": len(decoded), "total": len(decoded)})
    return out
