"""Render validation: does the mannequin read as a person? MediaPipe's keypoints on a batch's
shaded renders against our exact ones, as PCK (the share of keypoints within a fraction of the
torso size), written into the manifest under "validation" (worker option ``validate``).

    "validation": {"method": "mediapipe-pck", "backend": "solutions", "images": 8, "found": 8,
                   "joints": 131, "pck@0.1": 0.94, "pck@0.2": 0.99,
                   "per_joint": {"nose": {"n": 8, "pck@0.1": 1.0, "pck@0.2": 1.0}, ...}}

Counted: the body points our keypoints mark visible to the camera (c = 1); torso size: the neck to
the hips' midpoint, from the 3D joints projected (hips may be hidden in the image); an image where
MediaPipe finds nobody counts every visible point as a miss. Needs the shaded and keypoints passes.
"""
from __future__ import annotations

import io
import json

import numpy as np

from ..render import cameras, openpose
from ..storage import batch_prefix
from .mapping import mediapipe_to_openpose

THRESHOLDS = (0.1, 0.2)


def torso_size(manifest: dict, view: int, frame: int) -> float:
    joints = manifest["joints_3d"][frame]["joints"]
    xy, _ = cameras.project(manifest["views"][view], np.array([joints["neck"], joints["l_hip"], joints["r_hip"]]))
    return float(np.linalg.norm(xy[0] - (xy[1] + xy[2]) / 2))


def image_hits(theirs, frame: dict, torso: float) -> tuple[np.ndarray, np.ndarray]:
    """(visible (18,) bool, hits (len(THRESHOLDS), 18) bool) of one image: theirs (18, 2) pixels or
    None (nobody found) against a POSE_KEYPOINT frame of ours."""
    ours = np.array(frame["people"][0]["pose_keypoints_2d"], float).reshape(18, 3)
    seen = ours[:, 2] == 1.0
    if theirs is None:
        return seen, np.zeros((len(THRESHOLDS), 18), bool)
    dist = np.linalg.norm(np.asarray(theirs, float) - ours[:, :2], axis=1)
    return seen, np.array([seen & (dist <= t * torso) for t in THRESHOLDS])


def validate_batch(storage, manifest: dict, detector) -> dict:
    """The manifest's "validation" (module docstring) for a batch in storage. ValueError when the
    batch lacks the shaded or keypoints pass."""
    from PIL import Image

    entries = manifest["entries"]
    if not entries or any(not {"shaded", "keypoints"} <= set(e["files"]) for e in entries):
        raise ValueError("render validation needs the 'shaded' and 'keypoints' passes in render.passes")
    prefix = batch_prefix(manifest["project"], manifest["batch_id"])
    seen_n, hits_n, found = np.zeros(18), np.zeros((len(THRESHOLDS), 18)), 0
    for e in entries:
        rgb = np.asarray(Image.open(io.BytesIO(storage.get_bytes(prefix + e["files"]["shaded"]["key"]))).convert("RGB"))
        frame = json.loads(storage.get_bytes(prefix + e["files"]["keypoints"]["key"]))
        det = detector.detect(rgb)
        theirs = None if det is None else mediapipe_to_openpose(det.landmarks, rgb.shape[1], rgb.shape[0])[0]
        found += det is not None
        seen, hits = image_hits(theirs, frame, torso_size(manifest, e["view"], e["frame"]))
        seen_n, hits_n = seen_n + seen, hits_n + hits
    out = {"method": "mediapipe-pck", "backend": detector.backend, "images": len(entries), "found": found,
           "joints": int(seen_n.sum())}
    for t, h in zip(THRESHOLDS, hits_n):
        out[f"pck@{t}"] = round(float(h.sum() / max(seen_n.sum(), 1)), 4)
    out["per_joint"] = {name: {"n": int(seen_n[i]), **{f"pck@{t}": round(float(h[i] / seen_n[i]), 4)
                                                        for t, h in zip(THRESHOLDS, hits_n)}}
                        for i, name in enumerate(openpose.BODY_NAMES) if seen_n[i]}
    return out


# --- choosing the visibility cut (docs/extraction.md, "The visibility cut") ------------------------
def person_torsos(manifest: dict, view: int, frame: int) -> list:
    """Every person's torso size in one image (pixels; the neck to the hips' midpoint, projected)."""
    j3d = manifest["joints_3d"][frame]
    people = j3d.get("people") or [{"joints": j3d["joints"]}]
    out = []
    for p in people:
        j = p["joints"]
        xy, _ = cameras.project(manifest["views"][view], np.array([j["neck"], j["l_hip"], j["r_hip"]]))
        out.append(float(np.linalg.norm(xy[0] - (xy[1] + xy[2]) / 2)))
    return out


def cut_counts(det, frame: dict, torsos, cuts, threshold: float = 0.2) -> np.ndarray:
    """One image's counts for each visibility cut: (len(cuts), 4) of [truly visible points, those
    reported within threshold × torso (hits), points reported, reported points the truth has hidden
    or absent (false positives)]. det: a Detection or None (nobody found); frame: our POSE_KEYPOINT
    frame (one person per subject); torsos: person_torsos. With several people the detection is
    compared with the person whose visible points it places best (MediaPipe finds one)."""
    truths = [np.array(p["pose_keypoints_2d"], float).reshape(18, 3) for p in frame["people"]]
    out = np.zeros((len(cuts), 4))
    if det is None:
        seen = truths[0][:, 2] == 1.0
        out[:, 0] = seen.sum()
        return out
    h, w = frame["canvas_height"], frame["canvas_width"]
    xy, _, score = mediapipe_to_openpose(det.landmarks, w, h, scores=True)
    near = [(np.linalg.norm(xy - t[:, :2], axis=1) <= threshold * s) & (t[:, 2] == 1.0)
            for t, s in zip(truths, torsos)]
    k = int(np.argmax([n.sum() for n in near]))
    seen = truths[k][:, 2] == 1.0
    for i, cut in enumerate(cuts):
        reported = score >= cut
        out[i] = [seen.sum(), (near[k] & reported).sum(), reported.sum(), (reported & ~seen).sum()]
    return out


def cut_table(counts: np.ndarray, cuts) -> list:
    """Summed cut_counts → one row per cut: {"cut", "pck@0.2", "fp_rate" (false positives per
    reported point), "visible", "reported", "net" (hits less false positives: the cut's measure)}."""
    c = np.asarray(counts, float)
    return [{"cut": float(cut), "pck@0.2": round(float(r[1] / max(r[0], 1)), 4),
             "fp_rate": round(float(r[3] / max(r[2], 1)), 4), "visible": int(r[0]), "reported": int(r[2]),
             "net": int(r[1] - r[3])}
            for cut, r in zip(cuts, c)]
