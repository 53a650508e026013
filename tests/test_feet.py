"""Foot keypoints (issue 23): big toe, small toe and heel per foot on the mannequin, in POSE_KEYPOINT
as ComfyUI core's foot_keypoints_2d, drawn as core's whole-body drawer draws them behind a `feet`
switch. Oracles: Blender's own deformed foot mesh (tests/blender/feet_markers.py) and core's drawer
run from its own file (tests/oracles.py; skipped where no ComfyUI checkout is found, as
tests/test_occluded.py's core check)."""
import ast
import copy
import json

import numpy as np
import pytest

from oracles import sdpose_source
from pose_factory import spec as S
from pose_factory.render import mannequin as mq, openpose as op


def test_foot_points_are_vertices_of_the_feet_and_in_cores_order():
    for shape in (None, {"leg_length": 1.1}):
        body = mq.build(1.75, "average", shape)
        feet = {p.name: p for p in body.parts if p.name.startswith("foot_")}
        for i, name in enumerate(mq.FOOT_KEYPOINTS):
            part = feet[f"foot_{name[0]}"]
            v = mq.foot_vertices(name[0])[name[2:]]
            assert np.array_equal(body.keypoint_rest[mq.KP_FEET][i], part.verts[v]), name
            assert body.keypoint_joint[mq.KP_FEET][i] == part.joints[v]  # moves as its vertex does
    names = mq.keypoint_names()
    assert len(names) == mq.N_KEYPOINTS == 136 and names[mq.KP_FEET] == list(mq.FOOT_KEYPOINTS)
    # anatomy: big toes inside the small toes, toes in front of (-y) the heels, heels near the floor
    kp = dict(zip(mq.FOOT_KEYPOINTS, mq.build().keypoint_rest[mq.KP_FEET]))
    for s, out in (("l", 1), ("r", -1)):
        assert out * kp[f"{s}_big_toe"][0] < out * kp[f"{s}_small_toe"][0]
        assert kp[f"{s}_big_toe"][1] < kp[f"{s}_heel"][1] - 0.2 and kp[f"{s}_heel"][2] < 0.03


def test_core_foot_order():
    """Core's layout, read from its file where there is one: feet are DWPose's points 18-23, the
    COCO-WholeBody feet (left big toe, left small toe, left heel, then the right foot's)."""
    path = sdpose_source()
    if path is None:
        pytest.skip("ComfyUI core's comfy_extras/nodes_sdpose.py not found: set COMFYUI_DIR to a ComfyUI checkout")
    text = path.read_text(encoding="utf-8")
    assert '"foot_keypoints_2d":       _flatten(kp[18:24],  sc[18:24])' in text
    assert "18-23  feet  (6 kp)" in text
    ast.parse(text)


def _frame(rng, w, h, with_feet=True):
    def part(n, centre, spread):
        flat = []
        for x, y in (centre + rng.normal(0, spread, (n, 2))).tolist():
            r = rng.random()
            flat += [0.0, 0.0, 0.0] if r < 0.15 else [x, y, 1.0]
        return flat

    centre = rng.uniform(0.2, 0.8, 2) * (w, h)
    person = {"pose_keypoints_2d": part(18, centre, 0.2 * max(w, h)),
              "hand_left_keypoints_2d": part(21, centre, 0.05 * max(w, h)),
              "hand_right_keypoints_2d": part(21, centre, 0.05 * max(w, h)),
              "face_keypoints_2d": part(70, centre, 0.03 * max(w, h))}
    if with_feet:
        feet = part(6, centre + (0, 0.2 * h), 0.1 * max(w, h))
        feet[0:3] = [w - 0.5, h / 2, 1.0]  # at the canvas's right edge (inside), then outside
        feet[3:6] = [w + 0.5, h / 2, 1.0]
        feet[6:9] = [-0.6, 2.0, 1.0]  # int(-0.6) = 0: inside for core's test
        person["foot_keypoints_2d"] = feet
    return {"people": [person], "canvas_width": w, "canvas_height": h}


def test_feet_off_draws_todays_image_and_feet_on_adds_dots():
    rng = np.random.default_rng(23)
    for _ in range(40):
        w, h = (int(v) for v in rng.integers(64, 900, 2))
        frame = _frame(rng, w, h)
        plain = copy.deepcopy(frame)
        del plain["people"][0]["foot_keypoints_2d"]
        for mode in op.OCCLUDED_MODES:
            assert np.array_equal(op.draw_pose(frame, occluded=mode), op.draw_pose(plain, occluded=mode))
        assert np.array_equal(op.draw_pose(plain, feet=True), op.draw_pose(plain))  # no feet: nothing more
        assert not np.array_equal(op.draw_pose(frame, feet=True), op.draw_pose(frame))


def test_a_spec_without_feet_keeps_its_form_and_feet_true_is_written():
    base = {"subjects": [{"poses": ["standing"]}]}
    plain = S.normalize_spec(base)
    assert "feet" not in plain["render"]["openpose"]
    assert S.normalize_spec(dict(base, render={"openpose": {"feet": False}})) == plain
    on = S.normalize_spec(dict(base, render={"openpose": {"feet": True}}))
    assert on["render"]["openpose"]["feet"] is True and S.batch_id(on) != S.batch_id(plain)
    with pytest.raises(S.SpecError, match=r"render\.openpose\.feet"):
        S.normalize_spec(dict(base, render={"openpose": {"feet": "yes"}}))


def test_pose_keypoint_frame_writes_feet_only_when_given():
    xy = np.arange(36, dtype=float).reshape(18, 2) + 5
    frame = op.pose_keypoint_frame((xy, np.ones(18, bool)), None, None, None, 64, 64)
    assert "foot_keypoints_2d" not in frame["people"][0]
    feet = np.column_stack([10.0 + 9 * np.arange(6), np.full(6, 50.0)])
    vis = np.array([1, 1, 0, 0, 1, 1], bool)
    inside = np.array([1, 1, 1, 0, 1, 1], bool)
    frame = op.pose_keypoint_frame((xy, np.ones(18, bool), np.ones(18, bool), np.ones(18)), None, None, None,
                                   64, 64, feet=(feet, vis, inside, np.full(6, 2.0)))
    person = frame["people"][0]
    assert person["foot_keypoints_2d"][6:12] == [0.0] * 6 and person["foot_keypoints_2d"][2] == 1.0
    assert person[op.OWN_KEY]["occluded"]["foot_keypoints_2d"][6:9] == [28.0, 50.0, 1.0]
    assert person[op.OWN_KEY]["depth"]["foot_keypoints_2d"] == [2.0, 2.0, 2.0, 0.0, 2.0, 2.0]
    with pytest.raises(ValueError, match=r"foot_keypoints_2d must have 6 points"):
        op.validate_pose_keypoint({"people": [dict(person, foot_keypoints_2d=[1.0, 2.0, 1.0])],
                                   "canvas_width": 64, "canvas_height": 64})
    # with covered feet, show draws them and hide does not
    assert not np.array_equal(op.draw_pose(frame, feet=True, occluded="show"), op.draw_pose(frame, feet=True))


@pytest.fixture(scope="module")
def core():
    path = sdpose_source()
    if path is None:
        pytest.skip("ComfyUI core's comfy_extras/nodes_sdpose.py not found: set COMFYUI_DIR to a ComfyUI checkout "
                    "(scripts/comfy_harness_check.sh sets one up in ~/.cache/comfy-harness)")
    from oracles import sdpose_draw_node, sdpose_keypoint_draw

    return sdpose_draw_node(path), sdpose_keypoint_draw(path)


def test_feet_match_cores_whole_body_drawer(core):
    """Core's SDPose Draw Keypoints node (its execute and KeypointDraw, from its file) on our frames:
    feet alone through the node match our feet alone; on top of our body drawing, core's drawer's
    feet (draw_wholebody_keypoints with only draw_feet) match ours with feet on, pixel for pixel."""
    node, drawer = core
    rng = np.random.default_rng(2023)
    for i in range(60):
        w, h = (int(v) for v in rng.integers(64, 900, 2))
        frame = _frame(rng, w, h)
        person = frame["people"][0]
        feet_only = {"people": [dict(person, pose_keypoints_2d=[0.0] * 54)], "canvas_width": w, "canvas_height": h}
        theirs = node([feet_only], draw_body=False, draw_hands=False, draw_face=False, draw_feet=True,
                      draw_head=False, score_threshold=1.0)[0]
        ours = op.draw_pose(feet_only, hands=False, face=False, feet=True)
        assert theirs.any() and np.array_equal(ours, theirs), f"frame {i}: {json.dumps(frame)}"
        # over our body, before the hands and face (core's order: body, feet, hands, face)
        canvas = op.draw_pose(frame, hands=False, face=False)
        kp = np.zeros((134, 2), np.float32)
        sc = np.zeros(134, np.float32)
        f6 = np.array(person["foot_keypoints_2d"], np.float32).reshape(6, 3)
        kp[18:24], sc[18:24] = f6[:, :2], f6[:, 2]
        theirs = drawer().draw_wholebody_keypoints(canvas.copy(), kp, sc, threshold=1.0, draw_body=False,
                                                   draw_head=False, draw_feet=True, draw_face=False, draw_hands=False)
        assert np.array_equal(op.draw_pose(frame, hands=False, face=False, feet=True), theirs), f"frame {i}"


def test_feet_drawn_before_hands_and_face():
    """A hand point on top of a foot point covers it, as in core's order (feet, then hands)."""
    frame = {"people": [{"pose_keypoints_2d": [0.0] * 54, "hand_left_keypoints_2d": [30.0, 30.0, 1.0] + [0.0] * 60,
                         "hand_right_keypoints_2d": [], "face_keypoints_2d": [],
                         "foot_keypoints_2d": [30.0, 30.0, 1.0] + [0.0] * 15}], "canvas_width": 64, "canvas_height": 64}
    img = op.draw_pose(frame, feet=True)
    assert tuple(img[30, 30]) == op.HAND_JOINT_COLOR
    assert tuple(op.draw_pose(frame, hands=False, feet=True)[30, 30]) == op.FOOT_COLORS[0]


@pytest.mark.blender
def test_foot_markers_on_blenders_own_feet_within_a_pixel(blender, tmp_path):
    """Standing, sitting and lying on its back, from the front, the side and below: a marker at each
    foot point's vertex of Blender's own deformed foot mesh is found within 1 px of our keypoint."""
    out = tmp_path / "feet_markers.json"
    blender("feet_markers.py", out)
    rows = json.loads(out.read_text())
    assert len(rows) == 3 * 3 * 6
    assert {r["pose"] for r in rows} == {"standing", "sitting", "lying_back"}
    assert {r["view"] for r in rows} == {"front", "side", "below"}
    errors = []
    for r in rows:
        assert r["found"] is not None, f"{r['point']} not seen ({r['pose']}, {r['view']})"
        errors.append(np.hypot(*np.subtract(r["found"], r["ours"])))
        assert np.allclose(r["truth"], r["keypoint"], atol=1e-5), (r["pose"], r["point"])
    assert max(errors) <= 1.0, f"worst foot keypoint error {max(errors):.3f} px"


def test_depth_mode_draws_feet_far_to_near():
    """occluded depth: a foot dot is a piece at its own depth, among the limbs, far to near; a
    covered foot point is drawn too."""
    body = np.array([[32.0, 10.0]] * 18)
    body_vis = np.zeros(18, bool)
    body_vis[[9, 10]] = True  # r_knee, r_ankle: a limb from (20, 20) to (40, 20)
    body[9], body[10] = (20.0, 20.0), (44.0, 20.0)
    feet = np.array([[32.0, 20.0], [50.0, 50.0], [10.0, 50.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]])
    for foot_depth, on_top in ((1.0, "foot"), (9.0, "limb")):
        frame = op.pose_keypoint_frame((body, body_vis, np.ones(18, bool), np.full(18, 5.0)), None, None, None, 64, 64,
                                       feet=(feet, np.array([1, 0, 0, 0, 0, 0], bool), np.array([1, 1, 0, 0, 0, 0], bool),
                                             np.array([foot_depth, 3.0, 0, 0, 0, 0])))
        img = op.draw_pose(frame, occluded="depth", feet=True)
        limb = tuple(int(c * 0.6) for c in op.BODY_COLORS[8])
        assert tuple(img[20, 32]) == (op.FOOT_COLORS[0] if on_top == "foot" else limb)
        assert tuple(img[50, 50]) == op.FOOT_COLORS[1]  # covered: drawn in depth mode
        assert not img[50, 10].any()  # outside the frame's points: not drawn
        assert tuple(op.draw_pose(frame, feet=True)[20, 32]) == op.FOOT_COLORS[0]  # hide: the visible one
        assert not op.draw_pose(frame, feet=True)[50, 50].any()


@pytest.mark.blender
def test_a_batch_requested_with_feet_stores_images_drawn_with_them(tmp_path):
    """render.openpose.feet reaches the worker: the stored OpenPose images are draw_pose with feet;
    a side view of a walk sees one foot's points and covers the other's (kept in our field)."""
    from pose_factory.imageio import read_png
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage, batch_prefix

    store = LocalStorage(tmp_path / "store")
    spec = {"project": "feet", "render": {"width": 256, "height": 384, "passes": ["openpose", "keypoints"],
                                          "openpose": {"feet": True, "hands": False, "face": False}},
            "cameras": {"type": "orbit", "views": 2, "elevation": 0, "start_azimuth": 0},
            "subjects": [{"type": "mannequin", "poses": ["walk_left_step"]}]}
    manifest, rendered = render_batch(spec, store)
    assert rendered and manifest["spec"]["render"]["openpose"]["feet"] is True
    folder = tmp_path / "store" / batch_prefix(manifest["project"], manifest["batch_id"])
    seen = 0
    for e in manifest["entries"]:
        kp = json.loads((folder / e["files"]["keypoints"]["key"]).read_text())
        img = read_png(str(folder / e["files"]["openpose"]["key"]))
        assert np.array_equal(img, op.draw_pose(kp, hands=False, face=False, feet=True))
        assert not np.array_equal(img, op.draw_pose(kp, hands=False, face=False))
        seen += sum(kp["people"][0]["foot_keypoints_2d"][2::3])
    assert 3 <= seen < 12  # a front view (toes seen, heels behind the feet) and a back view (heels)
