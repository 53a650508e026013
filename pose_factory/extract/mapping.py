"""MediaPipe pose → OpenPose keypoints (DESIGN.md §5). Pure: takes landmarks, not images."""
from __future__ import annotations

import numpy as np

from ..render import openpose

# OpenPose COCO-18 index → MediaPipe landmark index (or a pair whose midpoint it is)
MEDIAPIPE_TO_OPENPOSE = [0, (11, 12), 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]
MIN_VISIBILITY = 0.5  # a landmark MediaPipe gives less visibility than this is written 0, 0, 0


def mediapipe_to_openpose(landmarks, width: int, height: int, min_visibility: float = MIN_VISIBILITY):
    """landmarks: (33, 3+) normalised x, y, z[, visibility] → (18, 2) pixels, (18,) present."""
    lm = np.asarray(landmarks, float)
    xy = lm[:, :2] * [width, height] - 0.5  # normalised image coords → pixel-centre coords
    vis = lm[:, 3] if lm.shape[1] > 3 else np.ones(len(lm))
    out, present = np.zeros((18, 2)), np.zeros(18, bool)
    for i, src in enumerate(MEDIAPIPE_TO_OPENPOSE):
        idx = list(src) if isinstance(src, tuple) else [src]
        out[i] = xy[idx].mean(0)
        present[i] = bool(vis[idx].min() >= min_visibility)
    return out, present


def hand_pixels(hand_landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe's 21 hand landmarks (normalised) → (21, 2) pixels. MediaPipe's hand order is
    OpenPose's (wrist, then thumb, index, middle, ring, pinky, base to tip), so no reordering."""
    return np.asarray(hand_landmarks, float)[:, :2] * [width, height] - 0.5


def keypoint_frame(landmarks, width: int, height: int, hands: dict | None = None,
                   min_visibility: float = MIN_VISIBILITY) -> dict:
    """One POSE_KEYPOINT frame (DESIGN.md §5) from a detection: landmarks (33, 4) normalised, or
    None for no person (a frame with no people); hands {"left"|"right": (21, 2) pixels or None}."""
    if landmarks is None:
        return {"people": [], "canvas_width": int(width), "canvas_height": int(height)}
    body = mediapipe_to_openpose(landmarks, width, height, min_visibility)
    parts = {}
    for side in ("left", "right"):
        pts = (hands or {}).get(side)
        parts[side] = None if pts is None else (np.asarray(pts, float), np.ones(21, bool))
    return openpose.pose_keypoint_frame(body, parts["left"], parts["right"], None, width, height)
