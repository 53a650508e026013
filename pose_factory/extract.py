"""MediaPipe pose → OpenPose keypoints (DESIGN.md §5). Pure: takes landmarks, not images."""
from __future__ import annotations

import numpy as np

# OpenPose COCO-18 index → MediaPipe landmark index (or a pair whose midpoint it is)
MEDIAPIPE_TO_OPENPOSE = [0, (11, 12), 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]


def mediapipe_to_openpose(landmarks, width: int, height: int, min_visibility: float = 0.5):
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
