"""OpenPose skeleton images and POSE_KEYPOINT frames (DESIGN.md §5).

Draws COCO-18 body, 21-point hands and face dots on black exactly as ControlNet's OpenPose
annotator does (pixel-for-pixel against controlnet-aux's own drawing, tests/test_openpose_drawing.py),
and builds / checks POSE_KEYPOINT frames, the keypoint type other ComfyUI packs read:

    {"people": [{"pose_keypoints_2d": [x, y, c, ...], "hand_left_keypoints_2d": [...],
                 "hand_right_keypoints_2d": [...], "face_keypoints_2d": [...],
                 "foot_keypoints_2d": [...]}],
     "canvas_width": W, "canvas_height": H}

foot_keypoints_2d is ComfyUI core's (its SDPose nodes write it, its whole-body drawer draws it):
6 points, left big toe, left small toe, left heel, right big toe, right small toe, right heel
(DWPose's points 18-23). Readers that know no feet ignore the key.

Pixel coordinates; a missing point is written 0, 0, 0 and a present one with c = 1.0.

Points the body covers (inside the frame, hidden behind the body) are written 0, 0, 0 like any
missing point, so every other pack's reader sees only the visible ones, and keep their true
position in a field of our own in the person's entry, with each in-frame point's camera depth:

    person["pose_factory"] = {
        "occluded": {"pose_keypoints_2d": [x, y, 1.0 for a covered point, else 0, 0, 0, ...], ...},
        "depth": {"pose_keypoints_2d": [metres along the view axis, 0.0 outside the frame, ...], ...}}

(the same part keys). Not a confidence between 0 and 1, because the readers disagree on the
threshold: controlnet-aux's decode_json_as_poses and the OpenPose editor (sd-webui-openpose-editor,
which ComfyUI's openpose editor packs embed) keep only c == 1, core's SDPose drawing drops
c < score_threshold (a widget from 0 to 1, default 0.3), ComfyUI-ultimate-openpose-editor draws
any c > 0. Only c = 0 is dropped by all of them. Points outside the frame stay 0, 0, 0 in both.
A detector's frame (Extract Pose, pose_factory/extract/mapping.py) has no "occluded" or "depth" but
may carry "dropped": {"pose_keypoints_2d": [x, y, score, ...]}, the points it found below its
visibility cut (written 0, 0, 0 in the part itself) with the detector's score (below 1, so never
drawn), 0, 0, 0 for the others: a later fit can still use them with a low weight.
draw_pose's ``occluded`` says what to do with the covered points: hide (the annotator's image),
show, or depth (every limb, far to near). Points a user chose to leave out (render/hide.py, the
`hide` widgets) are written 0, 0, 0 too, taken out of "occluded", and kept under
person["pose_factory"]["hidden"].

Pure numpy; OpenCV is imported only inside the drawing functions.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import echo

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
N_FOOT = 6  # core's foot_keypoints_2d: left big toe, small toe, heel, then the right foot's
PART_KEYS = ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
             "face_keypoints_2d", "foot_keypoints_2d")
PART_SIZES = dict(zip(PART_KEYS, ((N_BODY,), (N_HAND,), (N_HAND,), FACE_SIZES, (N_FOOT,))))
# core's whole-body drawer (KeypointDraw.draw_wholebody_keypoints) draws foot point i (18-23 in
# its 134-point layout) as a radius-4 dot in its colours[i % 18]: the first six body colours
FOOT_COLORS = BODY_COLORS[:N_FOOT]
OWN_KEY = "pose_factory"  # our field in each person's entry: covered points and depths
OCCLUDED_MODES = ("hide", "show", "depth")


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


def _own(person, what, key):
    """Our field's list for one part (``what`` "occluded" or "depth"), or None."""
    own = person.get(OWN_KEY)
    return ((own.get(what) or {}).get(key) or None) if isinstance(own, dict) else None


def _part_points(person, key, occluded):
    """The part's present points; with occluded show/depth, the covered ones too."""
    pts = _points(person.get(key))
    covered = _own(person, "occluded", key) if occluded != "hide" else None
    if covered:
        pts = pts or [None] * (len(covered) // 3)
        pts = [p if p is not None else c for p, c in zip(pts, _points(covered))]
    return pts


def _in_canvas(p, w, h):
    """Foot points are drawn only inside the canvas (0 <= int(x) < w, 0 <= int(y) < h), as core's
    whole-body drawer does."""
    return p is not None and 0 <= int(p[0]) < w and 0 <= int(p[1]) < h


def _draw_feet(cv2, img, pts):
    h, w = img.shape[:2]
    for p, color in zip(pts, FOOT_COLORS):
        if _in_canvas(p, w, h):
            cv2.circle(img, (int(p[0]), int(p[1])), JOINT_RADIUS, color, thickness=-1)


def _limb_poly(cv2, p1, p2, half_width):
    (x1, y1), (x2, y2) = p1, p2
    # Same float operations and int() truncations as the annotator, so the polygons match.
    length = ((y1 - y2) ** 2 + (x1 - x2) ** 2) ** 0.5
    angle = math.degrees(math.atan2(y1 - y2, x1 - x2))
    return cv2.ellipse2Poly((int((x1 + x2) / 2), int((y1 + y2) / 2)),
                            (int(length / 2), half_width), int(angle), 0, 360, 1)


def _draw_body(cv2, img, pts, scale):
    half_width = STICK_WIDTH * scale
    for (a, b), color in zip(LIMB_SEQ, BODY_COLORS):
        if a >= len(pts) or b >= len(pts) or pts[a] is None or pts[b] is None:
            continue
        cv2.fillConvexPoly(img, _limb_poly(cv2, pts[a], pts[b], half_width), [int(c * 0.6) for c in color])
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


def _depth_pieces(cv2, img, person, hands, face, scale, feet=False):
    """One person's drawing for occluded "depth": [(depth, [draw, ...])] in the annotator's order
    — each body limb, then its two joints on top; lone body joints; foot dots (with feet); each
    hand edge with its two joints; lone hand joints; face dots — a piece's depth the mean of its
    end points'. None when a point to be drawn has no depth (a frame that is not ours)."""
    pieces = []

    def depths(key, pts):
        d = _own(person, "depth", key) or []
        drawn = [i for i, p in enumerate(pts) if p is not None]
        if drawn and (len(d) != len(pts) or min(d[i] for i in drawn) <= 0):
            return None
        return d

    def dot(p, radius, color):
        return lambda: cv2.circle(img, (int(p[0]), int(p[1])), radius, color, thickness=-1)

    def chain(key, edges, edge_colors, edge, joint_color, radius=JOINT_RADIUS):
        """Edges between drawn points, each with its two joints after it, then the lone joints."""
        pts = _part_points(person, key, "depth")
        if key != "pose_keypoints_2d":
            pts = [p if _on_canvas(p) else None for p in pts]
        d = depths(key, pts)
        if d is None:
            return False
        joined = set()
        for (a, b), color in zip(edges, edge_colors):
            if max(a, b) < len(pts) and pts[a] is not None and pts[b] is not None:
                joined |= {a, b}
                pieces.append(((d[a] + d[b]) / 2, [edge(pts[a], pts[b], color)]
                               + [dot(pts[j], radius, joint_color(j)) for j in (a, b)]))
        pieces.extend((d[j], [dot(p, radius, joint_color(j))])
                      for j, p in enumerate(pts) if p is not None and j not in joined)
        return True

    half_width = STICK_WIDTH * scale

    def limb(p, q, color):
        return lambda: cv2.fillConvexPoly(img, _limb_poly(cv2, p, q, half_width), [int(c * 0.6) for c in color])

    def hand_edge(p, q, color):
        return lambda: cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, thickness=HAND_LINE)

    ok = chain("pose_keypoints_2d", LIMB_SEQ, BODY_COLORS, limb, lambda j: BODY_COLORS[j])
    if feet and person.get("foot_keypoints_2d"):
        h, w = img.shape[:2]
        pts = [p if _in_canvas(p, w, h) else None for p in _part_points(person, "foot_keypoints_2d", "depth")]
        d = depths("foot_keypoints_2d", pts)
        ok = ok and d is not None
        if ok:
            pieces.extend((d[j], [dot(p, JOINT_RADIUS, FOOT_COLORS[j])]) for j, p in enumerate(pts) if p is not None)
    for key in ("hand_left_keypoints_2d", "hand_right_keypoints_2d") if hands else ():
        ok = ok and chain(key, HAND_EDGES, HAND_COLORS, hand_edge, lambda j: HAND_JOINT_COLOR)
    if face:
        ok = ok and chain("face_keypoints_2d", (), (), None, lambda j: FACE_COLOR, FACE_RADIUS)
    return pieces if ok else None


def draw_pose(frame: dict, hands: bool = True, face: bool = True, sdxl_sticks: bool = False,
              canvas: np.ndarray | None = None, occluded: str = "hide", feet: bool = False) -> np.ndarray:
    """Draws one POSE_KEYPOINT frame as ControlNet's OpenPose annotator does.

    Returns an (H, W, 3) uint8 RGB image, H and W the frame's canvas size: black, or a copy of
    `canvas` (same size) to draw over. Per person, in the annotator's order: body limbs (filled
    ellipses of half-width 4 x stick_scale when `sdxl_sticks`, else 4, in 0.6 x the limb colour),
    body joints (radius 4), with `feet` the foot points, left hand, right hand (2 px edges in
    hue i/20, joints radius 4 in (0, 0, 255)), face (radius-3 white dots).

    feet: draws a person's foot_keypoints_2d as ComfyUI core's whole-body drawer
    (KeypointDraw.draw_wholebody_keypoints, nodes_sdpose.py) draws feet, after the body joints and
    before the hands: radius-4 dots in the first six body colours, only inside the canvas, no
    lines. Off (the default), the image is the annotator's, unchanged.

    Which points are drawn: a point is present only when its c >= 1 (what POSE_KEYPOINT readers
    do: they drop c < 1; we write c = 1.0 for visible points). A present body point is drawn
    wherever it is (OpenCV clips). A present hand or face point is drawn only when int(x) >= 1
    and int(y) >= 1, as controlnet-aux skips those at the canvas's top and left edge.

    occluded: what becomes of the points the body covers (kept in our own field, see the module
    docstring). "hide" draws only the present points: the annotator's image, what a detector
    finds in a photo. "show" draws the covered points too, in the annotator's order. "depth"
    draws them too, every piece ordered far to near by the camera depth of its end points (a
    limb or hand edge with its two joints on top; face dots), so near limbs overdraw far ones.
    A frame without our field (another pack's) draws the same in all three; one without depths
    draws "depth" as "show".
    """
    import cv2

    if occluded not in OCCLUDED_MODES:
        raise ValueError(f"occluded: got {occluded!r}, allowed: one of {', '.join(OCCLUDED_MODES)}")

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
    people = frame.get("people", [])
    if occluded == "depth":
        per_person = [_depth_pieces(cv2, img, person, hands, face, scale, feet) for person in people]
        if all(p is not None for p in per_person):
            # every person's pieces together, far to near; a stable sort keeps the annotator's
            # order among equal depths
            for _, draws in sorted((piece for p in per_person for piece in p), key=lambda piece: -piece[0]):
                for draw in draws:
                    draw()
            return img
    for person in people:
        _draw_body(cv2, img, _part_points(person, "pose_keypoints_2d", occluded), scale)
        if feet:
            _draw_feet(cv2, img, _part_points(person, "foot_keypoints_2d", occluded))
        if hands:
            _draw_hand(cv2, img, _part_points(person, "hand_left_keypoints_2d", occluded))
            _draw_hand(cv2, img, _part_points(person, "hand_right_keypoints_2d", occluded))
        if face:
            for p in _part_points(person, "face_keypoints_2d", occluded):
                if _on_canvas(p):
                    cv2.circle(img, (int(p[0]), int(p[1])), FACE_RADIUS, FACE_COLOR, thickness=-1)
    return img


def _flat(part, name, n_allowed):
    """A part (see pose_keypoint_frame) or None -> (public [x, y, c, ...], covered [x, y, c, ...]
    or None, depth [z, ...] or None), plain floats."""
    if part is None:
        return [], None, None
    if not isinstance(part, (tuple, list)) or len(part) not in (2, 4):
        raise ValueError(f"{name} must be (xy, visible) or (xy, visible, in_frame, depth)")
    xy = np.asarray(part[0], dtype=np.float64)
    visible = np.asarray(part[1], dtype=bool)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] not in n_allowed:
        raise ValueError(f"{name} points must have shape (N, 2) with N in {n_allowed}, "
                         f"got {xy.shape}")
    n = xy.shape[0]
    if visible.shape != (n,):
        raise ValueError(f"{name} visibility must have shape ({n},), got {visible.shape}")
    if len(part) == 2:
        inside, depth = visible, None
    else:
        inside = np.asarray(part[2], dtype=bool)
        depth = np.asarray(part[3], dtype=np.float64)
        if inside.shape != (n,) or depth.shape != (n,):
            raise ValueError(f"{name} in_frame and depth must have shape ({n},), got {inside.shape} "
                             f"and {depth.shape}")
        if (visible & ~inside).any():
            raise ValueError(f"{name} has a visible point outside the frame (in_frame false)")
        if not (np.isfinite(depth[inside]).all() and (depth[inside] > 0).all()):
            raise ValueError(f"{name} has a point in the frame whose depth is not a positive number")
    if not np.isfinite(xy[inside]).all():
        raise ValueError(f"{name} has a visible point that is not finite" if depth is None
                         else f"{name} has a point in the frame that is not finite")

    def triples(keep):
        out = []
        for (x, y), k in zip(xy.tolist(), keep.tolist()):
            out += [x, y, 1.0] if k else [0.0, 0.0, 0.0]
        return out

    if depth is None:
        return triples(visible), None, None
    return triples(visible), triples(inside & ~visible), [round(z, 6) if k else 0.0
                                                          for z, k in zip(depth.tolist(), inside.tolist())]


def pose_keypoint_frame(body, hands_left, hands_right, face, width: int, height: int, feet=None) -> dict:
    """One POSE_KEYPOINT frame with one person.

    feet: like the other parts, 6 points in core's foot_keypoints_2d order (left big toe, small
    toe, heel, then the right foot's); written only when given (the key is absent otherwise, as
    in the frames of readers that know no feet).

    Each part is `(xy, visible)` or `(xy, visible, in_frame, depth)`: xy an (N, 2) array of
    pixel coordinates, visible and in_frame (N,) bool arrays, depth (N,) camera depths (metres
    along the view axis) (N = 18 body, 21 per hand, 68 or 70 face). A point that is not visible
    is written 0, 0, 0 and a visible one x, y, 1.0. With in_frame and depth, the person also
    gets our own field (module docstring): the points inside the frame but not visible (covered
    by the body) at their true position, and the depth of every point inside the frame.
    `body` is required; a hand or the face may be None, written as an empty list (readers treat
    it as absent). Plain Python floats, so json.dumps takes the result.
    """
    if body is None:
        raise ValueError("body is required: (xy (18, 2), visible (18,))")
    parts = {key: _flat(part, name, PART_SIZES[key]) for key, part, name in zip(
        PART_KEYS, (body, hands_left, hands_right, face, feet), ("body", "hands_left", "hands_right", "face", "feet"))
        if feet is not None or key != "foot_keypoints_2d"}
    person = {key: public for key, (public, _, _) in parts.items()}
    if any(depth is not None for _, _, depth in parts.values()):
        person[OWN_KEY] = {"occluded": {key: covered or [] for key, (_, covered, _) in parts.items()},
                           "depth": {key: depth or [] for key, (_, _, depth) in parts.items()}}
    frame = {"people": [person], "canvas_width": int(width), "canvas_height": int(height)}
    validate_pose_keypoint(frame)
    return frame


def join_frames(frames: list) -> dict:
    """One POSE_KEYPOINT frame holding every frame's people, in order (several people in one
    scene: pose_keypoint_frame per person, then this). The frames share one canvas."""
    if not frames:
        raise ValueError("join_frames needs at least one frame")
    size = {(f["canvas_width"], f["canvas_height"]) for f in frames}
    if len(size) != 1:
        raise ValueError(f"frames of different canvas sizes cannot be joined: {sorted(size)}")
    frame = {"people": [p for f in frames for p in f["people"]], "canvas_width": frames[0]["canvas_width"],
             "canvas_height": frames[0]["canvas_height"]}
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
    for i, person in enumerate(people):
        at = f"{where}people[{i}]"
        if not isinstance(person, dict):
            raise ValueError(f"{at} must be a dict, got {type(person).__name__}")
        counts = {key: _check_part(person.get(key), f"{at}.{key}", allowed, 3, "[x, y, c, ...]")
                  for key, allowed in PART_SIZES.items()}
        if OWN_KEY in person:
            _check_own(person[OWN_KEY], f"{at}.{OWN_KEY}", counts)


def _check_part(nums, at, allowed, stride, form):
    """The number of points of one part list (0 when absent), or ValueError."""
    if nums is None or (isinstance(nums, (list, tuple)) and not nums):
        return 0  # absent part: readers skip it
    if not isinstance(nums, (list, tuple)):
        raise ValueError(f"{at} must be a list of numbers {form}, got {type(nums).__name__}")
    if len(nums) % stride:
        raise ValueError(f"{at} must have a multiple of {stride} numbers, got {len(nums)}")
    if len(nums) // stride not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{at} must have {want} points ({want} x {stride} numbers), "
                         f"got {len(nums) // stride}")
    for j, v in enumerate(nums):
        if not _is_number(v) or not _in_range(v, float("inf")):
            raise ValueError(f"{at}[{j}] must be a finite number, got {echo(v)}")
        if not -MAX_COORD <= v <= MAX_COORD:
            raise ValueError(f"{at}[{j}] must be from -{MAX_COORD} to {MAX_COORD} (pixels), got {echo(v)}")
    return len(nums) // stride


def _check_own(own, at, counts):
    """Our field: {"occluded": {part: [x, y, c, ...]}, "depth": {part: [z, ...]}, "dropped":
    {part: [x, y, score, ...]}}, each list as long as the part's own (when both are there)."""
    if not isinstance(own, dict):
        raise ValueError(f"{at} must be a dict with occluded and depth, got {type(own).__name__}")
    for what, stride, form in (("occluded", 3, "[x, y, c, ...]"), ("depth", 1, "[depth, ...]"),
                               ("dropped", 3, "[x, y, score, ...]")):
        lists = own.get(what, {})
        if not isinstance(lists, dict):
            raise ValueError(f"{at}.{what} must be a dict of part lists, got {type(lists).__name__}")
        for key, nums in lists.items():
            if key not in PART_SIZES:
                raise ValueError(f"{at}.{what}.{key}: unknown part, allowed: " + ", ".join(PART_KEYS))
            n = _check_part(nums, f"{at}.{what}.{key}", PART_SIZES[key], stride, form)
            if n and counts[key] and n != counts[key]:
                raise ValueError(f"{at}.{what}.{key} has {n} points, allowed: as many as {key} ({counts[key]})")


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
