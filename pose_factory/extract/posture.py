"""The posture API of the founding documents (DESIGN.md §7): parsing its two input forms,
validating its images, and the angles, measured on OpenPose-18 points in image pixels.

Input (the job's input, i.e. what RunPod hands the worker under "input"), either form:

    {"front": "<base64 JPEG or PNG>", "side": "<base64>"}
    {"input": {"front_image": "<base64>", "side_image": "<base64>"}}    # also {"front_image", "side_image"}

Output: {"status": "success", "data": {"front_view": {...}, "side_view": {...}}, "message": ...}
or {"status": "error", "message": "Image validation failed: …" | "Could not detect pose
landmarks …"}. Optional "points": true adds the points each angle was measured on (pixels).

Angles (degrees, image coordinates, y down; docs/posture.md has the same text):

front view (the subject faces the camera, so the subject's left is on the image's right):
- shoulder_tilt: the line right shoulder → left shoulder against the image horizontal;
  positive when the left shoulder is higher.
- pelvic_tilt: the same for the hips (right hip → left hip); positive: left hip higher.
- head_tilt: the same for the ears (right ear → left ear); positive: left ear higher.
- body_tilt: the line mid-hips → mid-shoulders against the image vertical; positive when the
  shoulders are to the subject's left of the hips.

side view (a profile; the facing direction is where the nose is from the ears' midpoint, either
way round):
- back_tilt: mid-hips → mid-shoulders against the vertical; positive: shoulders forward of the
  hips (leaning forward).
- neck_tilt: mid-shoulders → mid-ears against the vertical; positive: ears forward of the
  shoulders (head forward).
- body_tilt: mid-ankles → mid-shoulders against the vertical; positive: shoulders forward of the
  ankles.
- hip_tilt: mid-hips → mid-knees against the vertical; positive: knees forward of the hips (hip
  flexion).

"mid-" is the midpoint of the left and right points; in a side view MediaPipe estimates the far
side's points too, and both are used. The points are the detector's: on a person its shoulder is
the top of the shoulder (the acromion) and its ear the ear's opening (the tragus), the points
clinicians measure posture on; the tests' truth is these points on the rig
(mannequin.posture_landmarks; docs/extraction.md, "What the points are", with the accuracy).
"""
from __future__ import annotations

import base64
import binascii
import io
import math

import numpy as np

from ..errors import echo
from ..imageio import PNG_HEADER_BYTES, png_header

DETECT_ERROR = "Could not detect pose landmarks"
VALIDATION_ERROR = "Image validation failed"
MIN_SIDE = 100              # pixels, each side
MAX_SIDE = 8192             # pixels, the longest side
MAX_PIXELS = 40_000_000     # width × height
MAX_BASE64 = 14_000_000     # characters of one image's base64 (RunPod's /runsync body is 20 MB)
IMAGE_KINDS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
FORMS = ('{"front": <base64>, "side": <base64>} or '
         '{"input": {"front_image": <base64>, "side_image": <base64>}}')
POSTURE_KEYS = ("front", "side", "front_image", "side_image")
FRONT_ANGLES = ("shoulder_tilt", "pelvic_tilt", "head_tilt", "body_tilt")
SIDE_ANGLES = ("back_tilt", "neck_tilt", "body_tilt", "hip_tilt")

# OpenPose COCO-18 indices
NOSE, R_SH, L_SH, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EAR, L_EAR = 0, 2, 5, 8, 9, 10, 11, 12, 13, 16, 17


class PostureError(ValueError):
    """A posture request that cannot be answered; str() is the contract's message."""


def is_posture_input(job_input) -> bool:
    """Whether a job's input is meant for the posture API: an object without a JobSpec ("spec")
    that has one of the contract's image keys, or is empty, or wraps them in "input"."""
    if not isinstance(job_input, dict) or "spec" in job_input:
        return False
    inner = job_input.get("input")
    return (not job_input or any(k in job_input for k in POSTURE_KEYS)
            or (isinstance(inner, dict) and (not inner or any(k in inner for k in POSTURE_KEYS))))


def request_images(job_input: dict) -> tuple[str, str, bool]:
    """(front base64, side base64, points wanted) from either input form; PostureError else."""
    body = job_input
    if set(job_input) <= {"input", "points"} and isinstance(job_input.get("input"), dict):
        body = dict(job_input["input"], **({"points": job_input["points"]} if "points" in job_input else {}))
    unknown = sorted(set(body) - set(POSTURE_KEYS) - {"points"}, key=str)
    if unknown:
        raise PostureError(f"{VALIDATION_ERROR}: unknown field {echo(unknown[0], 60)}, allowed: {FORMS}")
    if ("front" in body or "side" in body) and ("front_image" in body or "side_image" in body):
        raise PostureError(f"{VALIDATION_ERROR}: give either front/side or front_image/side_image, not both")
    names = ("front_image", "side_image") if ("front_image" in body or "side_image" in body) else ("front", "side")
    missing = [n for n in names if body.get(n) is None]
    if missing:
        raise PostureError(f"{VALIDATION_ERROR}: no {' and no '.join(missing)} image, expected {FORMS}")
    points = body.get("points", False)
    if not isinstance(points, bool):
        raise PostureError(f"{VALIDATION_ERROR}: points: got {echo(points)}, allowed: true or false")
    return body[names[0]], body[names[1]], points


def decode_image(b64, which: str) -> np.ndarray:
    """A base64 JPEG or PNG (a data: URL prefix allowed) → (H, W, 3) uint8 RGB, checked against
    the contract's limits before anything is decoded; PostureError naming the image otherwise."""
    def fail(why):
        raise PostureError(f"{VALIDATION_ERROR}: {which} image: {why}")

    if not isinstance(b64, str):
        fail(f"expected a base64 string, got {type(b64).__name__}")
    if b64.startswith("data:") and "," in b64[:100]:
        b64 = b64.split(",", 1)[1]
    if len(b64) > MAX_BASE64:
        fail(f"{len(b64)} base64 characters, allowed at most {MAX_BASE64}")
    try:
        raw = base64.b64decode("".join(b64.split()), validate=True)
    except (binascii.Error, ValueError):
        fail("not valid base64")
    kind = next((k for magic, k in IMAGE_KINDS.items() if raw.startswith(magic)), None)
    if kind is None:
        fail("not a JPEG or PNG image")
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        w, h = png_header(raw[:PNG_HEADER_BYTES])[:2] if kind == "PNG" else (None, None)
        if kind == "JPEG" or min(w, h) >= MIN_SIDE and max(w, h) <= MAX_SIDE and w * h <= MAX_PIXELS:
            img = Image.open(io.BytesIO(raw))  # reads the header only
            w, h = img.size
    except Image.DecompressionBombError:  # a JPEG far over the limits
        fail(f"over {MAX_PIXELS // 1_000_000} megapixels, allowed at most {MAX_SIDE} a side")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        fail(f"a {kind} that cannot be read ({e})")
    if min(w, h) < MIN_SIDE:
        fail(f"{w}×{h} pixels, allowed at least {MIN_SIDE}×{MIN_SIDE}")
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        fail(f"{w}×{h} pixels, allowed at most {MAX_SIDE} a side and {MAX_PIXELS // 1_000_000} megapixels")
    try:
        img = ImageOps.exif_transpose(img).convert("RGB")
        return np.asarray(img, np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
        fail(f"a {kind} that cannot be decoded ({e})")


def _deg(dx: float, dy: float) -> float:
    return round(math.degrees(math.atan2(dx, dy)), 2)


def _mid(p, a, b):
    return (p[a] + p[b]) / 2


def front_angles(p) -> dict:
    """The front view's angles from OpenPose-18 points (18, 2), pixels (module docstring)."""
    p = np.asarray(p, float)

    def tilt(r, l):
        return _deg(p[r, 1] - p[l, 1], p[l, 0] - p[r, 0])

    hips, shoulders = _mid(p, R_HIP, L_HIP), _mid(p, R_SH, L_SH)
    return {"shoulder_tilt": tilt(R_SH, L_SH), "pelvic_tilt": tilt(R_HIP, L_HIP), "head_tilt": tilt(R_EAR, L_EAR),
            "body_tilt": _deg(shoulders[0] - hips[0], hips[1] - shoulders[1])}


def side_angles(p) -> dict:
    """The side view's angles from OpenPose-18 points (18, 2), pixels (module docstring)."""
    p = np.asarray(p, float)
    ears, shoulders, hips = _mid(p, R_EAR, L_EAR), _mid(p, R_SH, L_SH), _mid(p, R_HIP, L_HIP)
    knees, ankles = _mid(p, R_KNEE, L_KNEE), _mid(p, R_ANKLE, L_ANKLE)
    f = 1.0 if p[NOSE, 0] >= ears[0] else -1.0  # +1: the subject faces the image's right

    def lean(low, high):  # the line low → high against the vertical, positive towards the face
        return _deg(f * (high[0] - low[0]), low[1] - high[1])

    return {"back_tilt": lean(hips, shoulders), "neck_tilt": lean(shoulders, ears),
            "body_tilt": lean(ankles, shoulders),
            "hip_tilt": _deg(f * (knees[0] - hips[0]), knees[1] - hips[1])}


def success(front: dict, side: dict) -> dict:
    return {"status": "success", "data": {"front_view": front, "side_view": side},
            "message": "Posture analysis completed"}


def error(message: str) -> dict:
    """The contract's error answer. No "error" key: on RunPod the job COMPLETES with this as its
    output, so a client of the founding documents reads it where it reads the angles."""
    return {"status": "error", "message": message}
