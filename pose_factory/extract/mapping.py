"""MediaPipe pose → OpenPose keypoints (DESIGN.md §5). Pure: takes landmarks, not images."""
from __future__ import annotations

import numpy as np

from ..render import openpose

# OpenPose COCO-18 index → MediaPipe landmark index (or a pair whose midpoint it is)
MEDIAPIPE_TO_OPENPOSE = [0, (11, 12), 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]
# A body point whose MediaPipe visibility is below the cut is written 0, 0, 0 (not found), its
# position and score kept in our own field (openpose.OWN_KEY "dropped"). Chosen by measurement on
# our renders (docs/extraction.md, "The visibility cut"; bench/bench_visibility_cut.py).
MIN_VISIBILITY = 0.3
VISIBILITY_CUT_RANGE = (0.0, 1.0)


def check_visibility_cut(value, field: str = "visibility_cut") -> float:
    """A visibility cut as given by a user (a number from 0 to 1), else ValueError naming the field."""
    lo, hi = VISIBILITY_CUT_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise ValueError(f"{field}: got {value!r}, allowed: a number from {lo:g} to {hi:g} (MediaPipe's "
                         f"visibility below which a body point is written as not found; default {MIN_VISIBILITY:g})")
    return float(value)

# OpenPose's 70 face points (face_keypoints_2d: the 68 iBUG-300W points, then the right and left
# pupils) from MediaPipe FaceMesh's 478 landmarks (468 mesh points + 10 iris points with
# refine_landmarks). Right and left are the subject's: in a frontal photo the subject's right is on
# the image's left, where iBUG starts (point 0: the jaw's end by the subject's right ear). A pair is
# a midpoint. The correspondence follows the iBUG definitions on MediaPipe's canonical face model
# (mediapipe/modules/face_geometry/data/canonical_face_model_uv_visualization.png), as in
# github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks; checked on a photo in tests/test_extract_batch.py.
FACEMESH_TO_OPENPOSE_FACE = (
    # 0-16 jaw line, subject's right ear → chin (8) → left ear
    [127, 234, 93, (132, 58), (58, 172), 136, 150, 176, 152, 400, 379, 365, (397, 288), 361, 323, 454, 356]
    + [70, 63, 105, 66, 107]            # 17-21 right eyebrow, outer → inner
    + [336, 296, 334, 293, 300]         # 22-26 left eyebrow, inner → outer
    + [(168, 6), (197, 195), 5, 4]      # 27-30 nose bridge, top → tip
    + [75, 97, 2, 326, 305]             # 31-35 nose base, right → left
    + [33, 160, 158, 133, 153, 144]     # 36-41 right eye: outer corner, upper lid, inner corner, lower lid
    + [362, 385, 387, 263, 373, 380]    # 42-47 left eye: inner corner, upper lid, outer corner, lower lid
    + [61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181]  # 48-59 outer lips from the right corner
    + [78, 82, 13, 312, 308, 317, 14, 87]                    # 60-67 inner lips from the right corner
    + [468, 473])                       # 68, 69 right and left pupils (iris centres; refine_landmarks)
RIGHT_EYE, LEFT_EYE = list(range(36, 42)), list(range(42, 48))


def mediapipe_to_openpose(landmarks, width: int, height: int, min_visibility: float = MIN_VISIBILITY,
                          scores: bool = False):
    """landmarks: (33, 3+) normalised x, y, z[, visibility] → (18, 2) pixels, (18,) present
    (visibility at least min_visibility), and with scores=True (18,) visibility (a midpoint's: the
    lower of its pair's)."""
    lm = np.asarray(landmarks, float)
    xy = lm[:, :2] * [width, height] - 0.5  # normalised image coords → pixel-centre coords
    vis = lm[:, 3] if lm.shape[1] > 3 else np.ones(len(lm))
    out, score = np.zeros((18, 2)), np.zeros(18)
    for i, src in enumerate(MEDIAPIPE_TO_OPENPOSE):
        idx = list(src) if isinstance(src, tuple) else [src]
        out[i] = xy[idx].mean(0)
        score[i] = vis[idx].min()
    present = score >= min_visibility
    return (out, present, score) if scores else (out, present)


def hand_pixels(hand_landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe's 21 hand landmarks (normalised) → (21, 2) pixels. MediaPipe's hand order is
    OpenPose's (wrist, then thumb, index, middle, ring, pinky, base to tip), so no reordering."""
    return np.asarray(hand_landmarks, float)[:, :2] * [width, height] - 0.5


def face_pixels(face_landmarks, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh's landmarks (468 or 478, normalised) → OpenPose's 70 face points: (70, 2) pixels and
    (70,) present (inside the image). Without the 10 iris points (no refine_landmarks) a pupil is
    its eye's centre."""
    lm = np.asarray(face_landmarks, float)[:, :2] * [width, height] - 0.5
    out = np.zeros((70, 2))
    for i, src in enumerate(FACEMESH_TO_OPENPOSE_FACE[:68]):
        out[i] = lm[list(src) if isinstance(src, tuple) else [src]].mean(0)
    for i, (iris, eye) in enumerate(((468, RIGHT_EYE), (473, LEFT_EYE))):
        out[68 + i] = lm[iris] if len(lm) > iris else out[eye].mean(0)
    inside = (out[:, 0] >= -0.5) & (out[:, 0] < width - 0.5) & (out[:, 1] >= -0.5) & (out[:, 1] < height - 0.5)
    return out, inside


def keypoint_frame(landmarks, width: int, height: int, hands: dict | None = None,
                   min_visibility: float = MIN_VISIBILITY, face=None) -> dict:
    """One POSE_KEYPOINT frame (DESIGN.md §5) from a detection: landmarks (33, 4) normalised, or
    None for no person (a frame with no people); hands {"left"|"right": (21, 2) pixels or None};
    face: (70, 2) pixels and (70,) present (face_pixels), or None."""
    if landmarks is None:
        return {"people": [], "canvas_width": int(width), "canvas_height": int(height)}
    xy, present, score = mediapipe_to_openpose(landmarks, width, height, min_visibility, scores=True)
    parts = {}
    for side in ("left", "right"):
        pts = (hands or {}).get(side)
        parts[side] = None if pts is None else (np.asarray(pts, float), np.ones(21, bool))
    frame = openpose.pose_keypoint_frame((xy, present), parts["left"], parts["right"], face, width, height)
    dropped = []
    for (x, y), keep, c in zip(xy.tolist(), present.tolist(), score.tolist()):
        dropped += [0.0, 0.0, 0.0] if keep else [x, y, round(min(max(c, 0.0), 1.0), 4)]
    if any(dropped):  # the points below the cut: where MediaPipe put them, and its score (< 1, never drawn)
        frame["people"][0][openpose.OWN_KEY] = {"dropped": {"pose_keypoints_2d": dropped}}
        openpose.validate_pose_keypoint(frame)
    return frame


def detection_frame(det, width: int, height: int, min_visibility: float = MIN_VISIBILITY) -> dict:
    """The POSE_KEYPOINT frame of a detector's Detection (body, and the hands and face it found), or
    of None (no person: a frame with no people). A body point below min_visibility is written not
    found, kept in our own field (keypoint_frame)."""
    if det is None:
        return keypoint_frame(None, width, height)
    hands = {s: None if p is None else hand_pixels(p, width, height) for s, p in (det.hands or {}).items()}
    face = None if det.face is None else face_pixels(det.face, width, height)
    return keypoint_frame(det.landmarks, width, height, hands, min_visibility, face=face)
