"""OpenPose skeleton images and POSE_KEYPOINT frames (DESIGN.md §5).

Draws COCO-18 body, 21-point hands and face dots on black exactly as ControlNet's OpenPose
annotator does (pixel-for-pixel against controlnet-aux's own drawing, tests/test_openpose_drawing.py),
and builds / checks POSE_KEYPOINT frames, the keypoint type other ComfyUI packs read:

    {"people": [{"pose_keypoints_2d": [x, y, c, ...], "hand_left_keypoints_2d": [...],
                 "hand_right_keypoints_2d": [...], "face_keypoints_2d": [...]}],
     "canvas_width": W, "canvas_height": H}

Pixel coordinates; a missing point is written 0, 0, 0 and a present one with c = 1.0.

Pure numpy; OpenCV is imported only inside the drawing functions.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import echo

BODY_NAMES = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
              "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye",
              "l_eye", "r_ear", "l_ear")

# The 17 limbs, 0-indexed, in drawing order; limb i takes BODY_COLORS[i].
LIMB_SEQ = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
            (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))

BODY_COLORS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
               (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
               (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255),
               (255, 0, 255), (255, 0, 170), (255, 0, 85))

# Hand: 0 wrist, then 4 points per finger, thumb to pinky, each finger a chain from the wrist.
HAND_EDGES = tuple(e for f in range(5) for e in ((0, 4 * f + 1), (4 * f + 1, 4 * f + 2),
                                                 (4 * f + 2, 4 * f + 3), (4 * f + 3, 4 * f + 4)))

STICK_WIDTH = 4       # limb ellipse half-width at scale 1
JOINT_RADIUS = 4      # body and hand joints
FACE_RADIUS = 3
HAND_LINE = 2
HAND_JOINT_COLOR = (0, 0, 255)
FACE_COLOR = (255, 255, 255)

N_BODY, N_HAND = 18, 21
MAX_CANVAS = 16384      # pixels a side: what a POSE_KEYPOINT frame's canvas may be
MAX_COORD = 1_000_000   # pixels: a keypoint farther from the canvas is refused (OpenCV draws in int32)
FACE_SIZES = (68, 70)  # DWPose writes 68 face points, OpenPose 70
PART_KEYS = ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
             "face_keypoints_2d")


def _hsv_rgb(h, s=1.0, v=1.0):
    """HSV in 0..1 to RGB floats in 0..1, the textbook sextant formula (the same float operations
    as matplotlib's hsv_to_rgb, so the rounded colours agree)."""
    i = int(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    return ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))[i % 6]


# Edge i in hue i/20; OpenCV rounds a float colour half-to-even, as Python's round() does.
HAND_COLORS = tuple(tuple(round(c * 255) for c in _hsv_rgb(i / len(HAND_EDGES)))
                    for i in range(len(HAND_EDGES)))


def stick_scale(width: int, height: int) -> int:
    """Limb thickness factor some SDXL OpenPose ControlNets (xinsir) were trained with."""
    side = max(int(width), int(height))
    return 1 if side < 500 else min(2 + side // 1000, 7)


def _points(flat):
    """[x, y, c, ...] -> list of (x, y) or None; a point is present only when c >= 1, the rule
    POSE_KEYPOINT readers apply (sd-webui-controlnet's and comfyui_controlnet_aux's
    decode_json_as_poses drop c < 1), so a detector's low-confidence points are not drawn."""
    flat = flat or []
    return [(float(flat[i]), float(flat[i + 1])) if flat[i + 2] >= 1.0 else None
            for i in range(0, len(flat) - 2, 3)]


def _on_canvas(p):
    """Hand and face points whose truncated pixel x or y is below 1 are skipped, as ControlNet's
    annotator does (its detector marks missing ones with negative coordinates)."""
    return p is not None and int(p[0]) >= 1 and int(p[1]) >= 1


def _draw_body(cv2, img, pts, scale):
    half_width = STICK_WIDTH * scale
    for (a, b), color in zip(LIMB_SEQ, BODY_COLORS):
        if a >= len(pts) or b >= len(pts) or pts[a] is None or pts[b] is None:
            continue
        (x1, y1), (x2, y2) = pts[a], pts[b]
        # Same float operations and int() truncations as the annotator, so the polygons match.
        length = ((y1 - y2) ** 2 + (x1 - x2) ** 2) ** 0.5
        angle = math.degrees(math.atan2(y1 - y2, x1 - x2))
        poly = cv2.ellipse2Poly((int((x1 + x2) / 2), int((y1 + y2) / 2)),
                                (int(length / 2), half_width), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(img, poly, [int(c * 0.6) for c in color])
    for p, color in zip(pts, BODY_COLORS):
        if p is not None:
            cv2.circle(img, (int(p[0]), int(p[1])), JOINT_RADIUS, color, thickness=-1)


def _draw_hand(cv2, img, pts):
    for (a, b), color in zip(HAND_EDGES, HAND_COLORS):
        if b < len(pts) and _on_canvas(pts[a]) and _on_canvas(pts[b]):
            cv2.line(img, (int(pts[a][0]), int(pts[a][1])), (int(pts[b][0]), int(pts[b][1])),
                     color, thickness=HAND_LINE)
    for p in pts:
        if _on_canvas(p):
            cv2.circle(img, (int(p[0]), int(p[1])), JOINT_RADIUS, HAND_JOINT_COLOR, thickness=-1)


def draw_pose(frame: dict, hands: bool = True, face: bool = True, sdxl_sticks: bool = False,
              canvas: np.ndarray | None = None) -> np.ndarray:
    """Draws one POSE_KEYPOINT frame as ControlNet's OpenPose annotator does.

    Returns an (H, W, 3) uint8 RGB image, H and W the frame's canvas size: black, or a copy of
    `canvas` (same size) to draw over. Per person, in the annotator's order: body limbs (filled
    ellipses of half-width 4 x stick_scale when `sdxl_sticks`, else 4, in 0.6 x the limb colour),
    body joints (radius 4), left hand, right hand (2 px edges in hue i/20, joints radius 4 in
    (0, 0, 255)), face (radius-3 white dots).

    Which points are drawn: a point is present only when its c >= 1 (what POSE_KEYPOINT readers
    do: they drop c < 1; we write c = 1.0 for visible points). A present body point is drawn
    wherever it is (OpenCV clips). A present hand or face point is drawn only when int(x) >= 1
    and int(y) >= 1, as controlnet-aux skips those at the canvas's top and left edge.
    """
    import cv2

    _check_frame(frame, "")  # sizes and coordinates OpenCV can draw, refused by name otherwise
    w, h = int(frame["canvas_width"]), int(frame["canvas_height"])
    if canvas is None:
        img = np.zeros((h, w, 3), np.uint8)
    else:
        if canvas.shape != (h, w, 3) or canvas.dtype != np.uint8:
            raise ValueError(f"canvas must be uint8 of shape {(h, w, 3)}, "
                             f"got {canvas.dtype} {canvas.shape}")
        img = canvas.copy()
    scale = stick_scale(w, h) if sdxl_sticks else 1
    for person in frame.get("people", []):
        _draw_body(cv2, img, _points(person.get("pose_keypoints_2d")), scale)
        if hands:
            _draw_hand(cv2, img, _points(person.get("hand_left_keypoints_2d")))
            _draw_hand(cv2, img, _points(person.get("hand_right_keypoints_2d")))
        if face:
            for p in _points(person.get("face_keypoints_2d")):
                if _on_canvas(p):
                    cv2.circle(img, (int(p[0]), int(p[1])), FACE_RADIUS, FACE_COLOR, thickness=-1)
    return img


def _flat(part, name, n_allowed):
    """(xy (N, 2), visible (N,)) or None -> [x, y, c, ...] of plain floats."""
    if part is None:
        return []
    xy, visible = part
    xy = np.asarray(xy, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] not in n_allowed:
        raise ValueError(f"{name} points must have shape (N, 2) with N in {n_allowed}, "
                         f"got {xy.shape}")
    if visible.shape != (xy.shape[0],):
        raise ValueError(f"{name} visibility must have shape ({xy.shape[0]},), got {visible.shape}")
    if not np.isfinite(xy[visible]).all():
        raise ValueError(f"{name} has a visible point that is not finite")
    out = []
    for (x, y), v in zip(xy.tolist(), visible.tolist()):
        out += [x, y, 1.0] if v else [0.0, 0.0, 0.0]
    return out


def pose_keypoint_frame(body, hands_left, hands_right, face, width: int, height: int) -> dict:
    """One POSE_KEYPOINT frame with one person.

    Each part is a pair `(xy, visible)`: xy an (N, 2) array of pixel coordinates and visible an
    (N,) bool array (N = 18 body, 21 per hand, 68 or 70 face); an invisible point is written
    0, 0, 0 and a visible one x, y, 1.0. `body` is required; a hand or the face may be None,
    written as an empty list (readers treat it as absent). Plain Python floats, so json.dumps
    takes the result.
    """
    if body is None:
        raise ValueError("body is required: (xy (18, 2), visible (18,))")
    person = {"pose_keypoints_2d": _flat(body, "body", (N_BODY,)),
              "hand_left_keypoints_2d": _flat(hands_left, "hands_left", (N_HAND,)),
              "hand_right_keypoints_2d": _flat(hands_right, "hands_right", (N_HAND,)),
              "face_keypoints_2d": _flat(face, "face", FACE_SIZES)}
    frame = {"people": [person], "canvas_width": int(width), "canvas_height": int(height)}
    validate_pose_keypoint(frame)
    return frame


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _in_range(v, limit) -> bool:
    try:
        return math.isfinite(v) and -limit <= v <= limit
    except OverflowError:  # an integer too large for a float
        return False


def _check_frame(frame, where):
    if not isinstance(frame, dict):
        raise ValueError(f"{where}must be a dict with people, canvas_width and canvas_height, "
                         f"got {type(frame).__name__}")
    for key in ("canvas_width", "canvas_height"):
        v = frame.get(key)
        ok = _is_number(v) and _in_range(v, float("inf")) and float(v).is_integer() and v > 0
        if not ok:
            raise ValueError(f"{where}{key} must be a positive integer (pixels), got {echo(v)}")
        if v > MAX_CANVAS:
            raise ValueError(f"{where}{key} must be at most {MAX_CANVAS} (pixels), got {echo(v)}")
    people = frame.get("people")
    if not isinstance(people, (list, tuple)):
        raise ValueError(f"{where}people must be a list of person dicts, got {type(people).__name__}")
    sizes = {"pose_keypoints_2d": (N_BODY,), "hand_left_keypoints_2d": (N_HAND,),
             "hand_right_keypoints_2d": (N_HAND,), "face_keypoints_2d": FACE_SIZES}
    for i, person in enumerate(people):
        at = f"{where}people[{i}]"
        if not isinstance(person, dict):
            raise ValueError(f"{at} must be a dict, got {type(person).__name__}")
        for key, allowed in sizes.items():
            nums = person.get(key)
            if nums is None or (isinstance(nums, (list, tuple)) and not nums):
                continue  # absent part: readers skip it
            if not isinstance(nums, (list, tuple)):
                raise ValueError(f"{at}.{key} must be a list of numbers [x, y, c, ...], "
                                 f"got {type(nums).__name__}")
            if len(nums) % 3:
                raise ValueError(f"{at}.{key} must have a multiple of 3 numbers, got {len(nums)}")
            if len(nums) // 3 not in allowed:
                want = " or ".join(str(n) for n in allowed)
                raise ValueError(f"{at}.{key} must have {want} points ({want} x 3 numbers), "
                                 f"got {len(nums) // 3}")
            for j, v in enumerate(nums):
                if not _is_number(v) or not _in_range(v, float("inf")):
                    raise ValueError(f"{at}.{key}[{j}] must be a finite number, got {echo(v)}")
                if not -MAX_COORD <= v <= MAX_COORD:
                    raise ValueError(f"{at}.{key}[{j}] must be from -{MAX_COORD} to {MAX_COORD} (pixels), "
                                     f"got {echo(v)}")


def validate_pose_keypoint(obj):
    """Checks a POSE_KEYPOINT frame or list of frames from another pack or a user; returns the
    frames as a list. Raises ValueError naming the bad field and what is allowed. Parts may be
    missing or empty (absent); extra keys (person_id, *_3d, animals) are allowed."""
    if isinstance(obj, dict):
        _check_frame(obj, "")
        return [obj]
    if not isinstance(obj, (list, tuple)):
        raise ValueError(f"POSE_KEYPOINT must be a frame dict or a list of them, "
                         f"got {type(obj).__name__}")
    for k, frame in enumerate(obj):
        _check_frame(frame, f"[{k}].")
    return list(obj)
