"""OpenPose drawing against controlnet-aux's own drawing functions (DESIGN.md §6 "Oracles"),
loaded as tests/oracles.py says. The oracle takes coordinates normalised to 0..1 and multiplies
them by W and H; we give it x / W and y / H. The oracle's data model: a missing body point is
None; a missing hand or face point is (-1, -1), as its detector writes them. 0.0.10 has no
stick-scale parameter, so the SDXL sticks are checked against the oracle at scale 1 and by
property tests above that. Covered joints (occluded hide/show/depth) on synthetic frames here; on
a real render in tests/test_occluded.py.
"""
import json

import numpy as np
import pytest

from oracles import controlnet_aux_util, oracle_draw
from pose_factory.render import openpose as op


@pytest.fixture(scope="module")
def oracle():
    return controlnet_aux_util()


# --- random poses -----------------------------------------------------------------------------
def _coords(rng, n, w, h, centre, spread, integer):
    pts = centre + rng.normal(0, spread, (n, 2))
    # Some points pushed to within a few pixels of an edge (either side) or just outside.
    edge = rng.random(n) < 0.15
    for i in np.flatnonzero(edge):
        axis = rng.integers(2)
        side = (w, h)[axis] * rng.integers(2)
        pts[i, axis] = side + rng.uniform(-4, 4)
    if integer:
        pts = np.round(pts)
    return pts


def _part(rng, n, w, h, centre, spread, integer):
    xy = _coords(rng, n, w, h, centre, spread, integer)
    flat = []
    p_missing = rng.uniform(0, 0.4)
    for x, y in xy.tolist():
        r = rng.random()
        if r < p_missing:
            flat += [0.0, 0.0, 0.0]
        elif r < p_missing + 0.05:
            flat += [x, y, float(rng.uniform(0.05, 0.99))]  # low confidence: readers drop it
        else:
            flat += [x, y, 1.0]
    return flat


def random_frame(rng, integer=False, pow2=False):
    if pow2:
        w, h = (int(2 ** v) for v in rng.integers(6, 12, 2))  # 64 .. 2048
    elif rng.random() < 0.3:
        w, h = (int(v) for v in rng.integers(1000, 2200, 2))  # SDXL-sized
    else:
        w, h = (int(v) for v in rng.integers(48, 1000, 2))
    people = []
    for _ in range(1 + (rng.random() < 0.2)):
        side = max(w, h)
        centre = rng.uniform(0, 1, 2) * (w, h)
        person = {"pose_keypoints_2d": _part(rng, 18, w, h, centre, side * 0.25, integer)}
        for key in ("hand_left_keypoints_2d", "hand_right_keypoints_2d"):
            c = centre + rng.normal(0, side * 0.2, 2)
            person[key] = [] if rng.random() < 0.1 else _part(rng, 21, w, h, c, side * 0.04, integer)
        n_face = 70 if rng.random() < 0.7 else 68
        c = centre + rng.normal(0, side * 0.1, 2)
        person["face_keypoints_2d"] = [] if rng.random() < 0.1 else \
            _part(rng, n_face, w, h, c, side * 0.03, integer)
        people.append(person)
    return {"people": people, "canvas_width": w, "canvas_height": h}


N_RANDOM = 240
N_INTEGER = 50


def as_oracle_sees(frame):
    """The frame with each coordinate replaced by the pixel position the oracle computes from
    our normalised one, (x / W) * W, which can land one ulp off x."""
    w, h = frame["canvas_width"], frame["canvas_height"]
    out = json.loads(json.dumps(frame))
    for person in out["people"]:
        for key in op.PART_KEYS:
            if key not in person:  # feet: written only when given
                continue
            flat = person[key]
            flat[0::3] = [x / w * w for x in flat[0::3]]
            flat[1::3] = [y / h * h for y in flat[1::3]]
    return out


def _compare(oracle, rng, n, integer=False, pow2=False):
    sizes = set()
    for i in range(n):
        frame = random_frame(rng, integer, pow2)
        op.validate_pose_keypoint(frame)
        sizes.add(max(frame["canvas_width"], frame["canvas_height"]) >= 1000)
        hands, face = (True, True) if i % 5 else (bool(i % 2), not i % 2)
        want = oracle_draw(oracle, frame, hands=hands, face=face)
        assert want.any()
        if integer and not pow2:
            frame = as_oracle_sees(frame)  # see test_matches_controlnet_aux_integer_pixels
        ours = op.draw_pose(frame, hands=hands, face=face)
        assert ours.shape == want.shape and ours.dtype == np.uint8
        same = (ours == want).all(axis=2)
        assert same.all(), (f"pose {i}: {(~same).sum()} of {same.size} pixels differ, first at "
                            f"(row, col) {tuple(np.argwhere(~same)[0])}; frame {json.dumps(frame)}")
    assert sizes == {False, True}  # both plain and SDXL-sized canvases were drawn


def test_matches_controlnet_aux(oracle):
    # Random float pixel coordinates: every pixel identical.
    _compare(oracle, np.random.default_rng(1234), N_RANDOM)


def test_matches_controlnet_aux_integer_pixels(oracle):
    # Integer pixel coordinates make every int() in the drawing sit on a boundary, where an
    # artefact of the oracle's normalised input shows: x / W * W can come back one ulp below x
    # and int() then truncates to the pixel before (shifting a limb's centre, turning its angle
    # by a degree, dropping a hand or face point at x = 1); about 1 % of pixels on such poses.
    # That is the input, not the drawing, so: on power-of-two canvases, where x / W * W == x
    # exactly, the integers themselves; elsewhere ours gets the position the oracle computes.
    _compare(oracle, np.random.default_rng(99), N_INTEGER, integer=True, pow2=True)
    _compare(oracle, np.random.default_rng(98), N_INTEGER, integer=True)


def test_sdxl_sticks_at_scale_1_match_oracle(oracle):
    rng = np.random.default_rng(7)
    for _ in range(20):
        frame = random_frame(rng)
        frame["canvas_width"] = int(rng.integers(48, 500))
        frame["canvas_height"] = int(rng.integers(48, 500))
        assert op.stick_scale(frame["canvas_width"], frame["canvas_height"]) == 1
        np.testing.assert_array_equal(op.draw_pose(frame, sdxl_sticks=True), oracle_draw(oracle, frame))


def test_oracle_comparison_can_fail(oracle):
    # The comparison sees a thicker stick and a changed colour.
    rng = np.random.default_rng(3)
    frame = random_frame(rng)
    frame["canvas_width"], frame["canvas_height"] = 1500, 1200
    assert not np.array_equal(op.draw_pose(frame, sdxl_sticks=True), oracle_draw(oracle, frame))
    frame = random_frame(rng)
    ours = op.draw_pose(frame)
    ours[ours == 153] = 152
    assert not np.array_equal(ours, oracle_draw(oracle, frame))


def test_hand_colours_are_matplotlib_hsv(oracle):
    import matplotlib.colors
    want = [tuple(int(v) for v in np.round(matplotlib.colors.hsv_to_rgb([i / 20, 1.0, 1.0]) * 255))
            for i in range(20)]
    assert list(op.HAND_COLORS) == want


# --- stick scale (no oracle for it in controlnet-aux 0.0.10: properties) ------------------------
def _one_limb(w, h, p1, p2):
    body = np.zeros((18, 2))
    vis = np.zeros(18, bool)
    body[1], body[2] = p1, p2  # neck -> right shoulder, limb 0, colour (255, 0, 0)
    vis[[1, 2]] = True
    return op.pose_keypoint_frame((body, vis), None, None, None, w, h)


@pytest.mark.parametrize("w,h,scale", [(1200, 800, 3), (640, 2100, 4), (3000, 400, 5), (400, 300, 1)])
def test_sdxl_stick_thickness(w, h, scale):
    assert op.stick_scale(w, h) == scale
    limb = np.array([int(0.6 * 255), 0, 0])
    horizontal = _one_limb(w, h, (50.5, 150.5), (350.5, 150.5))
    vertical = _one_limb(w, h, (200.5, 20.5), (200.5, 280.5))
    for sdxl, half in ((False, 4), (True, 4 * scale)):
        img = op.draw_pose(horizontal, sdxl_sticks=sdxl)
        col = (img[:, 200] == limb).all(axis=1)
        assert col.sum() == 2 * half + 1 and col[150 - half] and col[150 + half]
        img = op.draw_pose(vertical, sdxl_sticks=sdxl)
        row = (img[150] == limb).all(axis=1)
        assert row.sum() == 2 * half + 1 and row[200 - half] and row[200 + half]
        # Joints keep radius 4 whatever the stick scale, drawn over the limb in full colour.
        joint = (img == (255, 170, 0)).all(axis=2)  # right shoulder, at (200, 280)
        assert joint.sum() == (op.draw_pose(vertical) == (255, 170, 0)).all(axis=2).sum() > 0
        assert joint[280, 196] and joint[280, 204] and not joint[280, 195]


def test_stick_scale():
    assert op.stick_scale(499, 499) == 1
    assert op.stick_scale(64, 64) == 1
    assert op.stick_scale(500, 10) == 2
    assert op.stick_scale(10, 999) == 2
    assert op.stick_scale(1000, 1000) == 3
    assert op.stick_scale(1999, 1024) == 3
    assert op.stick_scale(1024, 2048) == 4
    assert op.stick_scale(5000, 10) == 7
    assert op.stick_scale(100_000, 10) == 7


# --- drawing rules ----------------------------------------------------------------------------
def test_confidence_below_one_is_not_drawn():
    frame = {"people": [{"pose_keypoints_2d": [0.0] * 54, "face_keypoints_2d": [],
                         "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}],
             "canvas_width": 64, "canvas_height": 64}
    frame["people"][0]["pose_keypoints_2d"][:3] = [32.0, 32.0, 0.99]
    assert not op.draw_pose(frame).any()
    frame["people"][0]["pose_keypoints_2d"][2] = 1.0
    img = op.draw_pose(frame)
    assert tuple(img[32, 32]) == (255, 0, 0) and tuple(img[32, 36]) == (255, 0, 0)
    assert not img[32, 37].any() and not img[0, 0].any()


def test_canvas_is_drawn_over_not_modified():
    frame = _one_limb(100, 80, (10.5, 40.5), (90.5, 40.5))
    base = np.full((80, 100, 3), 7, np.uint8)
    img = op.draw_pose(frame, canvas=base)
    assert (base == 7).all()
    assert tuple(img[0, 0]) == (7, 7, 7) and tuple(img[40, 50]) == (153, 0, 0)
    with pytest.raises(ValueError, match="canvas must be uint8 of shape"):
        op.draw_pose(frame, canvas=np.zeros((100, 80, 3), np.uint8))


def test_constants():
    assert len(op.BODY_NAMES) == 18 and op.BODY_NAMES[1] == "neck" and op.BODY_NAMES[17] == "l_ear"
    assert len(op.LIMB_SEQ) == 17 and len(op.BODY_COLORS) == 18
    assert op.LIMB_SEQ[0] == (1, 2) and op.LIMB_SEQ[-1] == (15, 17)
    assert len(op.HAND_EDGES) == 20 and op.HAND_EDGES[4] == (0, 5) and op.HAND_EDGES[-1] == (19, 20)


# --- POSE_KEYPOINT frames ---------------------------------------------------------------------
def test_pose_keypoint_frame():
    rng = np.random.default_rng(0)
    body, hand, face = (rng.uniform(0, 500, (n, 2)).astype(np.float32) for n in (18, 21, 70))
    vis = np.ones(18, bool)
    vis[[3, 17]] = False
    frame = op.pose_keypoint_frame((body, vis), (hand, np.ones(21, bool)), None,
                                   (face, rng.random(70) < 0.5), np.int64(640), 480)
    assert json.loads(json.dumps(frame)) == frame
    assert frame["canvas_width"] == 640 and type(frame["canvas_width"]) is int
    person = frame["people"][0]
    flat = person["pose_keypoints_2d"]
    assert len(flat) == 54 and all(type(v) is float for v in flat)
    assert flat[9:12] == [0.0, 0.0, 0.0] and flat[51:54] == [0.0, 0.0, 0.0]
    assert flat[0:3] == [float(body[0, 0]), float(body[0, 1]), 1.0]
    assert person["hand_right_keypoints_2d"] == [] and len(person["hand_left_keypoints_2d"]) == 63
    assert len(person["face_keypoints_2d"]) == 210
    assert op.validate_pose_keypoint([frame]) == [frame]


@pytest.mark.parametrize("args,msg", [
    (dict(body=None), "body is required"),
    (dict(body=(np.zeros((17, 2)), np.ones(17, bool))), r"body points must have shape \(N, 2\)"),
    (dict(body=(np.zeros((18, 2)), np.ones(17, bool))), "body visibility must have shape"),
    (dict(hands_left=(np.zeros((20, 2)), np.ones(20, bool))), "hands_left points"),
    (dict(face=(np.zeros((69, 2)), np.ones(69, bool))), r"face points .* N in \(68, 70\)"),
    (dict(body=(np.full((18, 2), np.nan), np.ones(18, bool))), "not finite"),
])
def test_pose_keypoint_frame_errors(args, msg):
    kw = dict(body=(np.zeros((18, 2)), np.ones(18, bool)), hands_left=None, hands_right=None,
              face=None, width=64, height=64)
    kw.update(args)
    with pytest.raises(ValueError, match=msg):
        op.pose_keypoint_frame(**kw)


def test_invisible_nan_points_are_fine():
    body = np.full((18, 2), np.nan)
    vis = np.zeros(18, bool)
    frame = op.pose_keypoint_frame((body, vis), None, None, None, 64, 64)
    assert frame["people"][0]["pose_keypoints_2d"] == [0.0] * 54


def _good():
    return {"people": [{"pose_keypoints_2d": [1.0, 2.0, 1.0] * 18,
                        "hand_left_keypoints_2d": [0, 0, 0] * 21, "hand_right_keypoints_2d": [],
                        "face_keypoints_2d": [5, 5, 1] * 68, "person_id": [-1]}],
            "canvas_width": 512, "canvas_height": 768, "animals": []}


def _set(path, value):
    frame = _good()
    obj = frame
    for key in path[:-1]:
        obj = obj[key]
    if value is KeyError:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    return frame


@pytest.mark.parametrize("obj,msg", [
    (_set(("people", 0, "pose_keypoints_2d"), [0.0] * 52),
     r"^people\[0\]\.pose_keypoints_2d must have a multiple of 3 numbers, got 52$"),
    (_set(("people", 0, "pose_keypoints_2d"), [0.0] * 75),
     r"^people\[0\]\.pose_keypoints_2d must have 18 points .*got 25$"),
    (_set(("people", 0, "hand_left_keypoints_2d"), [0.0] * 60),
     r"^people\[0\]\.hand_left_keypoints_2d must have 21 points"),
    (_set(("people", 0, "face_keypoints_2d"), [0.0] * 207),
     r"^people\[0\]\.face_keypoints_2d must have 68 or 70 points"),
    (_set(("people", 0, "pose_keypoints_2d", 4), "2"),
     r"^people\[0\]\.pose_keypoints_2d\[4\] must be a finite number, got '2'$"),
    (_set(("people", 0, "pose_keypoints_2d", 0), float("inf")), r"pose_keypoints_2d\[0\] must be a finite"),
    (_set(("people", 0, "pose_keypoints_2d", 2), True), r"pose_keypoints_2d\[2\] must be a finite"),
    (_set(("people", 0, "face_keypoints_2d"), "1,2,3"), r"face_keypoints_2d must be a list of numbers"),
    (_set(("people", 0), [1, 2, 3]), r"^people\[0\] must be a dict, got list$"),
    (_set(("people",), None), r"^people must be a list of person dicts, got NoneType$"),
    (_set(("canvas_width",), KeyError), r"^canvas_width must be a positive integer \(pixels\), got None$"),
    (_set(("canvas_height",), 0), r"^canvas_height must be a positive integer"),
    (_set(("canvas_height",), 511.5), r"^canvas_height must be a positive integer"),
    ([_good(), _set(("canvas_width",), -3)], r"^\[1\]\.canvas_width must be a positive integer"),
    ([_good(), _set(("people", 0, "pose_keypoints_2d"), [0.0] * 53)],
     r"^\[1\]\.people\[0\]\.pose_keypoints_2d must have a multiple of 3 numbers, got 53$"),
    ("people", r"^POSE_KEYPOINT must be a frame dict or a list of them, got str$"),
    ([None], r"^\[0\]\.must be a dict"),
])
def test_validate_pose_keypoint_errors(obj, msg):
    with pytest.raises(ValueError, match=msg):
        op.validate_pose_keypoint(obj)


def test_validate_pose_keypoint_accepts():
    good = _good()
    assert op.validate_pose_keypoint(good) == [good]
    assert op.validate_pose_keypoint([good, good]) == [good, good]
    assert op.validate_pose_keypoint([]) == []
    bare = {"people": [{"pose_keypoints_2d": [0] * 54}], "canvas_width": 64.0, "canvas_height": 64}
    assert op.validate_pose_keypoint(bare) == [bare]
    assert op.draw_pose(bare).shape == (64, 64, 3)


# --- covered joints: our own field, and occluded hide / show / depth ---------------------------
def _covered_frame(rng, w=320, h=240):
    """A frame from pose_keypoint_frame's (xy, visible, in_frame, depth) parts: some points
    visible, some covered (in frame, not visible), some outside the frame."""
    parts = []
    for n in (18, 21, 21, 70):
        xy = np.stack([rng.uniform(2, w - 2, n), rng.uniform(2, h - 2, n)], 1)
        inside = rng.random(n) < 0.85
        xy[~inside] = rng.choice([-50.0, np.nan, 1e6], size=(int((~inside).sum()), 2))
        visible = inside & (rng.random(n) < 0.6)
        depth = rng.uniform(1.5, 2.5, n)
        depth[~inside] = rng.choice([-1.0, np.nan], size=int((~inside).sum()))
        parts.append((xy, visible, inside, depth))
    return op.pose_keypoint_frame(*parts, w, h), parts


def _without_own(frame):
    out = json.loads(json.dumps(frame))
    for person in out["people"]:
        person.pop(op.OWN_KEY, None)
    return out


def _promoted(frame):
    """The frame as if the covered points were visible (c = 1 in the readers' lists)."""
    out = _without_own(frame)
    for person, mine in zip(out["people"], frame["people"]):
        for key in op.PART_KEYS:
            covered = mine[op.OWN_KEY]["occluded"].get(key, [])  # feet: written only when given
            for i in range(0, len(covered), 3):
                if covered[i + 2] == 1.0:
                    person[key][i:i + 3] = covered[i:i + 3]
    return out


def test_covered_points_are_zero_for_readers_and_kept_in_our_field():
    frame, parts = _covered_frame(np.random.default_rng(5))
    assert json.loads(json.dumps(frame)) == frame and op.validate_pose_keypoint(frame) == [frame]
    person = frame["people"][0]
    assert set(person[op.OWN_KEY]) == {"occluded", "depth"}
    for key, (xy, visible, inside, depth) in zip(op.PART_KEYS, parts):
        public = np.array(person[key]).reshape(-1, 3)
        covered = np.array(person[op.OWN_KEY]["occluded"][key]).reshape(-1, 3)
        d = np.array(person[op.OWN_KEY]["depth"][key])
        hidden = inside & ~visible
        assert hidden.any() and (~inside).any() and visible.any()
        assert (public[visible] == np.c_[xy[visible], np.ones(visible.sum())]).all()
        assert (public[~visible] == 0).all()  # covered and outside alike: 0, 0, 0 for every reader
        assert (covered[hidden] == np.c_[xy[hidden], np.ones(hidden.sum())]).all()
        assert (covered[~hidden] == 0).all()  # visible ones are in the readers' list, outside ones nowhere
        assert np.allclose(d[inside], depth[inside], atol=1e-6) and (d[~inside] == 0).all()
    # the plain (xy, visible) form writes no field of ours, as before
    plain = op.pose_keypoint_frame(*[p[:2] for p in parts], 320, 240)
    assert op.OWN_KEY not in plain["people"][0] and _without_own(frame) == plain


@pytest.mark.parametrize("change,msg", [
    (lambda p: (p[0], p[1], p[2][:5], p[3]), r"body in_frame and depth must have shape \(18,\)"),
    (lambda p: (p[0], np.ones(18, bool), np.r_[False, np.ones(17, bool)], p[3]), "visible point outside the frame"),
    (lambda p: (p[0], p[1], np.ones(18, bool), np.r_[0.0, np.ones(17)]), "depth is not a positive number"),
    (lambda p: (np.r_[[[np.nan, 1.0]], np.ones((17, 2))], np.r_[False, np.ones(17, bool)], np.ones(18, bool),
                np.ones(18)), "point in the frame that is not finite"),
    (lambda p: p[:3], r"body must be \(xy, visible\) or \(xy, visible, in_frame, depth\)"),
])
def test_covered_parts_errors(change, msg):
    body = (np.ones((18, 2)), np.ones(18, bool), np.ones(18, bool), np.ones(18))
    with pytest.raises(ValueError, match=msg):
        op.pose_keypoint_frame(change(body), None, None, None, 64, 64)


def test_hide_is_todays_image_and_show_draws_the_covered_points(oracle):
    rng = np.random.default_rng(11)
    for _ in range(40):
        frame, _ = _covered_frame(rng, *(int(v) for v in rng.integers(64, 700, 2)))
        hide = op.draw_pose(frame)
        assert np.array_equal(hide, op.draw_pose(frame, occluded="hide"))
        # what readers draw of our frame: controlnet-aux, as before this field existed
        assert np.array_equal(hide, oracle_draw(oracle, frame))
        assert np.array_equal(hide, op.draw_pose(_without_own(frame)))
        show = op.draw_pose(frame, occluded="show")
        assert np.array_equal(show, oracle_draw(oracle, _promoted(frame)))  # every point, annotator's order
        assert not np.array_equal(show, hide)
        # depth: the same pieces, in another order (the same pixels drawn, other colours on top)
        depth = op.draw_pose(frame, occluded="depth")
        assert np.array_equal(depth.any(axis=2), show.any(axis=2))


def _crossing(depth_right, depth_left):
    """Right upper arm (limb 2) and left upper arm (limb 4) crossing in an X at (50, 50)."""
    xy = np.zeros((18, 2))
    xy[[2, 3, 5, 6]] = [(20.5, 20.5), (80.5, 80.5), (80.5, 20.5), (20.5, 80.5)]
    inside = np.zeros(18, bool)
    inside[[2, 3, 5, 6]] = True
    depth = np.ones(18)
    depth[[2, 3]], depth[[5, 6]] = depth_right, depth_left
    visible = inside.copy()
    visible[[5, 6]] = False  # the left arm is covered
    return op.pose_keypoint_frame((xy, visible, inside, depth), None, None, None, 100, 100)


def test_depth_draws_far_to_near():
    right, left = (tuple(int(c * 0.6) for c in op.BODY_COLORS[i]) for i in (2, 4))  # limb colours
    near_right = _crossing(2.0, 2.4)
    assert tuple(op.draw_pose(near_right, occluded="hide")[50, 50]) == right  # the left arm is not drawn
    assert tuple(op.draw_pose(near_right, occluded="show")[50, 50]) == left  # annotator's order: limb 4 last
    assert tuple(op.draw_pose(near_right, occluded="depth")[50, 50]) == right  # the near one wins
    assert tuple(op.draw_pose(_crossing(2.4, 2.0), occluded="depth")[50, 50]) == left
    # joints go on top of their limb, as the annotator draws them
    img = op.draw_pose(near_right, occluded="depth")
    assert tuple(img[80, 80]) == op.BODY_COLORS[3] and tuple(img[80, 20]) == op.BODY_COLORS[6]


def test_depth_without_depths_draws_as_show_and_other_packs_frames_draw_the_same():
    frame = _crossing(2.0, 2.4)
    no_depth = json.loads(json.dumps(frame))
    del no_depth["people"][0][op.OWN_KEY]["depth"]
    assert np.array_equal(op.draw_pose(no_depth, occluded="depth"), op.draw_pose(frame, occluded="show"))
    theirs = _good()
    drawn = [op.draw_pose(theirs, occluded=mode) for mode in op.OCCLUDED_MODES]
    assert np.array_equal(drawn[0], drawn[1]) and np.array_equal(drawn[0], drawn[2])
    with pytest.raises(ValueError, match="occluded: got 'behind', allowed: one of hide, show, depth"):
        op.draw_pose(frame, occluded="behind")


def test_hands_and_face_follow_the_option():
    xy = np.tile([[40.5, 40.5]], (21, 1)) + np.arange(21)[:, None] * [2.0, 1.0]
    visible, inside = np.zeros(21, bool), np.ones(21, bool)  # a hand behind the back
    body = (np.zeros((18, 2)), np.zeros(18, bool), np.zeros(18, bool), np.zeros(18))
    frame = op.pose_keypoint_frame(body, (xy, visible, inside, np.full(21, 2.0)), None,
                                   (xy[:1].repeat(70, 0) + [[30, 0]], visible[:1].repeat(70), inside[:1].repeat(70),
                                    np.full(70, 2.0)), 120, 100)
    assert not op.draw_pose(frame).any()
    for mode in ("show", "depth"):
        img = op.draw_pose(frame, occluded=mode)
        assert tuple(img[40, 40]) == op.HAND_JOINT_COLOR and tuple(img[40, 70]) == op.FACE_COLOR
        assert not op.draw_pose(frame, occluded=mode, hands=False, face=False).any()


@pytest.mark.parametrize("own,msg", [
    ([1, 2], r"people\[0\]\.pose_factory must be a dict with occluded and depth, got list"),
    ({"occluded": []}, r"pose_factory\.occluded must be a dict of part lists"),
    ({"depth": {"feet": [1.0]}}, r"pose_factory\.depth\.feet: unknown part"),
    ({"depth": {"pose_keypoints_2d": [1.0] * 17}}, r"pose_factory\.depth\.pose_keypoints_2d must have 18 points"),
    ({"occluded": {"pose_keypoints_2d": [0.0] * 53}}, r"pose_factory\.occluded\.pose_keypoints_2d must have a multiple of 3"),
    ({"depth": {"face_keypoints_2d": [1.0] * 70}}, r"face_keypoints_2d has 70 points, allowed: as many as face_keypoints_2d \(68\)"),
    ({"depth": {"pose_keypoints_2d": [1.0] * 17 + ["x"]}}, r"depth\.pose_keypoints_2d\[17\] must be a finite number"),
])
def test_validate_our_field(own, msg):
    frame = _good()
    frame["people"][0][op.OWN_KEY] = own
    with pytest.raises(ValueError, match=msg):
        op.validate_pose_keypoint(frame)
