"""Body shapes (pose_factory/render/shape.py): validation, the default body unchanged to the last bit,
each parameter measured on the mesh it builds, and Blender's own armature as the keypoints' oracle
on a child, a heavy and a heroic mannequin."""
import copy
import hashlib
import json

import numpy as np
import pytest

from pose_factory import cli
from pose_factory import spec as S
from pose_factory.errors import SpecError
from pose_factory.render import mannequin as mq
from pose_factory.render import poses, rig, shape
from tests.test_render_exact import marker_errors

SKULL_VERTS = 32 * 19 + 2  # the skull is the head part's first mesh: ellipsoid(seg=32, rings=20)


def _spec(shape_raw, **subject):
    return S.normalize_spec({"subjects": [dict(subject, poses=["rest"], shape=shape_raw)]})


# --- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [None, "adult", {}, {"preset": "adult"}, dict(shape.DEFAULTS),
                                 {"head_ratio": 7.5, "arm_length": 1}])
def test_the_default_body_is_not_written_and_keeps_the_batch_id(raw):
    subject = _spec(raw)["subjects"][0]
    assert "shape" not in subject
    demo = copy.deepcopy(cli.DEMO_SPEC)
    demo["subjects"][0]["shape"] = raw
    assert S.batch_id(S.normalize_spec(demo)) == "d561348d75cc0345"  # the demo's id (tests/test_props.py)


@pytest.mark.parametrize("name", [p for p in shape.PRESETS if p != "adult"])
def test_a_preset_is_stored_as_its_numbers_and_normalizing_again_keeps_them(name):
    spec = _spec(name)
    stored = spec["subjects"][0]["shape"]
    assert stored == {**shape.DEFAULTS, **shape.PRESETS[name]}
    assert S.normalize_spec(spec) == spec
    assert S.batch_id(spec) != S.batch_id(_spec(None))
    for key, (_, lo, hi, _) in shape.PARAMS.items():  # every preset within the documented ranges
        assert lo <= stored[key] <= hi, (name, key)


def test_overrides_apply_on_top_of_the_preset():
    stored = _spec({"preset": "child", "leg_length": 1.1, "hip_width": 0.8})["subjects"][0]["shape"]
    assert stored == {**shape.DEFAULTS, **shape.PRESETS["child"], "leg_length": 1.1, "hip_width": 0.8}
    assert _spec({"shoulder_width": 1.3})["subjects"][0]["shape"] == dict(shape.DEFAULTS, shoulder_width=1.3)


@pytest.mark.parametrize("raw, field, allowed", [
    ("kid", "subjects[0].shape", "one of adult, child, teen, heroic, anime"),
    (5, "subjects[0].shape", "a preset name (adult, child"),
    ({"preset": "giant"}, "subjects[0].shape.preset", "one of adult, child"),
    ({"head_ratio": 3}, "subjects[0].shape.head_ratio", "a number from 4 to 9"),
    ({"head_ratio": 9.5}, "subjects[0].shape.head_ratio", "a number from 4 to 9"),
    ({"shoulder_width": 2}, "subjects[0].shape.shoulder_width", "a number from 0.75 to 1.35"),
    ({"hip_width": 0.5}, "subjects[0].shape.hip_width", "a number from 0.75 to 1.35"),
    ({"arm_length": "long"}, "subjects[0].shape.arm_length", "a number from 0.85 to 1.15"),
    ({"leg_length": True}, "subjects[0].shape.leg_length", "a number from 0.85 to 1.15"),
    ({"leg_length": float("nan")}, "subjects[0].shape.leg_length", "a number from 0.85 to 1.15"),
    ({"neck_length": 1}, "subjects[0].shape.neck_length", "keys preset, head_ratio"),
])
def test_a_wrong_shape_names_its_field_and_what_is_allowed(raw, field, allowed):
    with pytest.raises(SpecError) as e:
        _spec(raw)
    assert e.value.field == field
    assert allowed in e.value.allowed


# --- the default body, as before ----------------------------------------------------------
def _digest(body: mq.Mannequin) -> str:
    """sha256 of the rest joints, keypoints and every vertex, rounded to 1e-9 m (the last bits of
    sin/cos may differ between CPUs)."""
    h = hashlib.sha256()
    old = slice(0, mq.KP_FEET.start)  # the keypoints before the feet were appended (issue 23)
    for a in [body.rest, body.keypoint_rest[old], body.keypoint_joint[old]] + [p.verts for p in body.parts]:
        h.update(np.ascontiguousarray(np.round(a, 9) + 0.0).tobytes())
    return h.hexdigest()


def test_the_default_shape_builds_todays_body_to_the_last_bit():
    # digests of the body built by the code before body shapes existed (commit 8608a1c)
    assert _digest(mq.build(1.75, "average")) == "6e589910be7b12094b0de911a188508d6f6ec65473f43fad6ef486b22742b3a1"
    assert _digest(mq.build(1.6, "slim")) == "0eaf2a39480e986d9c60c91d18d6b16bdfc83d0a4c6bcb60c03d42a02d879ffc"
    for height, build in ((1.75, "average"), (1.6, "slim"), (2.05, "heavy")):
        plain, shaped = mq.build(height, build), mq.build(height, build, dict(shape.DEFAULTS))
        assert plain.rest.tobytes() == shaped.rest.tobytes()
        assert plain.keypoint_rest.tobytes() == shaped.keypoint_rest.tobytes()
        for a, b in zip(plain.parts, shaped.parts):
            assert a.verts.tobytes() == b.verts.tobytes() and a.faces == b.faces
        ref = np.array([rig.JOINTS[n].rest for n in rig.JOINT_NAMES]) * (height / rig.REFERENCE_HEIGHT)
        assert rig.rest_positions(height).tobytes() == ref.tobytes()
        assert rig.rest_positions(height, dict(shape.DEFAULTS)).tobytes() == ref.tobytes()


# --- each parameter measured on the mesh ----------------------------------------------------
def _skull(body):
    return body.parts[mq.PARTS.index("head")].verts[:SKULL_VERTS]


def _joint(body, name):
    return body.rest[rig.JOINT_INDEX[name]]


@pytest.mark.parametrize("name", list(shape.PRESETS))
def test_head_ratio_is_the_figures_height_in_heads(name):
    values = shape.resolve(shape.normalize_shape(name, "shape"))
    for height in (1.2, 1.75, 2.2):
        skull = _skull(mq.build(height, "average", shape.normalize_shape(name, "shape")))[:, 2]
        crown, chin = skull.max(), skull.min()
        assert crown / (crown - chin) == pytest.approx(values["head_ratio"], abs=1e-9)
        assert crown == pytest.approx(rig.CROWN_Z * height / rig.REFERENCE_HEIGHT, abs=1e-9)  # as tall as before


def test_widths_and_lengths_are_the_factors_they_say():
    base = mq.build(1.75, "average")

    def body(**over):
        return mq.build(1.75, "average", dict(shape.DEFAULTS, **over))

    def breadth(b, joint):
        return _joint(b, f"l_{joint}")[0] - _joint(b, f"r_{joint}")[0]

    def widest(b, part):
        v = b.parts[mq.PARTS.index(part)].verts
        return v[:, 0].max() - v[:, 0].min()

    wide = body(shoulder_width=1.3)
    assert breadth(wide, "shoulder") == pytest.approx(1.3 * breadth(base, "shoulder"), rel=1e-12)
    assert widest(wide, "chest") == pytest.approx(1.3 * widest(base, "chest"), rel=0.02)
    narrow = body(hip_width=0.8)
    assert breadth(narrow, "hip") == pytest.approx(0.8 * breadth(base, "hip"), rel=1e-12)
    assert widest(narrow, "pelvis") == pytest.approx(0.8 * widest(base, "pelvis"), rel=0.02)

    def reach(b):  # shoulder to the middle fingertip
        return np.linalg.norm(_joint(b, "l_middle4") - _joint(b, "l_shoulder"))

    assert reach(body(arm_length=1.12)) == pytest.approx(1.12 * reach(base), rel=1e-12)
    long_legs = body(leg_length=1.1)
    assert _joint(long_legs, "l_hip")[2] == pytest.approx(1.1 * _joint(base, "l_hip")[2], rel=1e-12)
    assert _joint(long_legs, "neck")[2] == pytest.approx(_joint(base, "neck")[2], rel=1e-12)  # the torso gave way


LIMBS = {"upper_arm": ("shoulder", "elbow"), "forearm": ("elbow", "wrist"), "thigh": ("hip", "knee"),
         "shin": ("knee", "ankle")}


def _inside(point, verts, tris) -> bool:
    """Ray parity (Möller–Trumbore): a closed mesh is crossed an odd number of times from inside."""
    d = np.array([0.3, 0.5, 0.81])
    a, b, c = (verts[tris[:, i]] for i in range(3))
    e1, e2 = b - a, c - a
    p = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-15
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    t = point - a
    u = np.einsum("ij,ij->i", t, p) * inv
    q = np.cross(t, e1)
    v = (q @ d) * inv
    dist = np.einsum("ij,ij->i", e2, q) * inv
    return int(np.sum(ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (dist > 0))) % 2 == 1


@pytest.mark.parametrize("name", list(shape.PRESETS))
@pytest.mark.parametrize("build", list(rig.BUILDS))
def test_every_limb_joint_lies_inside_its_limbs_and_the_feet_stand_on_the_floor(name, build):
    """The meshes are built from the joints' own numbers: each joint inside both limbs it joins."""
    body = mq.build(1.5, build, shape.normalize_shape(name, "shape"))
    for part, joints in LIMBS.items():
        for side in ("l", "r"):
            mesh = body.parts[mq.PARTS.index(f"{part}_{side}")]
            tris = mesh.triangles()[0]
            for j in joints:
                assert _inside(_joint(body, f"{side}_{j}"), mesh.verts, tris), (part, side, j)
    head = body.parts[mq.PARTS.index("head")]
    skull_faces = [f for f in head.faces if max(f) < SKULL_VERTS]
    skull_tris = mq.triangulate(head.verts, skull_faces, np.zeros(len(skull_faces)))[0]
    neck_top = body.parts[mq.PARTS.index("neck")].verts[-1]  # the neck loft's end pole: inside the skull
    assert _inside(neck_top, head.verts, skull_tris)
    assert _inside(_joint(body, "head"), head.verts, skull_tris)
    posed = poses.pose_body(body, poses.normalize_pose_entry("rest", "pose"))
    feet = np.concatenate([posed.transform_points(p.joints, p.verts, body.rest) for p in body.parts
                           if p.name in ("foot_l", "foot_r")])
    assert abs(feet[:, 2].min()) < 1e-9  # grounded on the shaped feet


# --- Blender's own armature: markers at the joints of shaped bodies --------------------------
BODIES = {
    "child": {"height": 1.2, "build": "average", "shape": shape.normalize_shape("child", "shape")},
    "heavy": {"height": 1.9, "build": "heavy", "shape": None},
    "heroic": {"height": 1.85, "build": "average", "shape": shape.normalize_shape("heroic", "shape")},
    "anime": {"height": 1.6, "build": "slim",
              "shape": shape.normalize_shape({"preset": "anime", "arm_length": 0.9}, "shape")},
}


@pytest.mark.blender
@pytest.mark.parametrize("name", list(BODIES))
def test_markers_at_the_joints_of_shaped_bodies_match_the_keypoints(blender, tmp_path, name):
    """tests/blender/markers.py on a shaped mannequin: emissive markers where Blender's own posed
    armature (built from the body's rest joints) puts the keypoints, found in the render within
    1 px of the keypoints our forward kinematics projects, in 3 cameras."""
    body_json = tmp_path / "body.json"
    body_json.write_text(json.dumps(BODIES[name]))
    out = tmp_path / "markers.json"
    blender("markers.py", out, tmp_path / "m.png", "-", body_json)
    errors = marker_errors(json.loads(out.read_text()))
    print(f"{name}: worst marker error {max(errors):.3f} px, mean {np.mean(errors):.3f} px over {len(errors)}")
    assert max(errors) <= 1.0, f"worst keypoint error {max(errors):.3f} px"


@pytest.mark.blender
def test_a_shaped_subject_renders_its_shape_through_the_worker(tmp_path):
    """A child's spec through the real render entry: in the parts pass (Blender's object index) the
    head is as wide and the figure as tall as the child's mesh projects (today's head at that
    height is much smaller), and the keypoints file holds the child's joints."""
    from pose_factory import imageio, render, storage as storage_mod
    from pose_factory.render import cameras

    child = shape.normalize_shape("child", "shape")
    W = H = 256
    raw = {"project": "tests", "render": {"width": W, "height": H, "passes": ["keypoints", "seg"]},
           "cameras": {"type": "list", "cameras": [{"location": [0, -10, 0.65], "look_at": [0, 0, 0.65],
                                                    "orthographic": True, "ortho_scale": 1.6}]},
           "subjects": [{"type": "mannequin", "height": 1.2, "poses": ["rest"], "shape": "child"}]}
    store = storage_mod.LocalStorage(tmp_path)
    manifest, _ = render.render_batch(raw, store)
    folder = tmp_path / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    entry = manifest["entries"][0]
    parts = imageio.read_png(str(folder / entry["files"]["parts"]["key"]))
    parts = parts[..., 0] if parts.ndim == 3 else parts
    cam = manifest["views"][0]
    spec = S.normalize_spec(raw)

    def extents(shape_values):
        """(head's width, figure's height) in px of the mesh of that shape, projected by the camera."""
        body = mq.build(1.2, "average", shape_values)
        verts = mq.posed_vertices(body, poses.pose_body(body, spec["subjects"][0]["poses"][0]))
        xy, _ = cameras.project(cam, verts)
        head = xy[np.concatenate([np.full(len(p.verts), p.name == "head") for p in body.parts])]
        return np.ptp(head[:, 0]), np.ptp(xy[:, 1])

    cols = np.nonzero((parts == mq.PART_LABEL["head"]).any(axis=0))[0]
    rows = np.nonzero((parts > 0).any(axis=1))[0]
    seen = np.array([cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()])
    print("head width, figure height: seen", seen, "child mesh", extents(child), "adult mesh", extents(None))
    assert np.abs(seen - extents(child)).max() <= 1.5  # a pixel's coverage at each edge
    assert abs(seen[0] - extents(None)[0]) > 5  # today's head at this height is much smaller
    body = mq.build(1.2, "average", child)
    posed = poses.pose_body(body, spec["subjects"][0]["poses"][0])
    xy, _ = cameras.project(cam, mq.posed_keypoints(body, posed))
    kp = json.loads((folder / entry["files"]["keypoints"]["key"]).read_text())
    got = np.array(kp["people"][0]["pose_keypoints_2d"]).reshape(18, 3)[:, :2]
    assert np.abs(got - xy[:18]).max() < 0.01


def test_docs_list_every_shape_key_preset_and_range():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "poses.md").read_text()
    assert shape.shape_markdown() in doc


@pytest.mark.blender
def test_a_motion_clip_is_retargeted_onto_the_shaped_legs(blender, tmp_path):
    """A 1.75 m default body's walk (written by Blender's BVH exporter) on a 1.75 m child: the
    stride scales by the child's legs (hip centre to ankle centre, as docs/motion.md says) and the
    child's own feet stand on the floor."""
    from pose_factory.motion import clip as clip_mod
    from pose_factory.motion import retarget

    walk = [{"preset": "walk_left_step", "offset": [0.0, -0.2 * i, 0.0]} for i in range(3)]
    job = tmp_path / "walk.json"
    job.write_text(json.dumps({"height": 1.75, "poses": walk, "rename": {}}))
    bvh_path = tmp_path / "walk.bvh"
    blender("make_bvh_clip.py", job, bvh_path)
    child = shape.normalize_shape("child", "shape")

    def legs(rest):
        i = rig.JOINT_INDEX
        return np.linalg.norm(rest[[i["l_hip"], i["r_hip"]]].mean(0) - rest[[i["l_ankle"], i["r_ankle"]]].mean(0))

    ratio = legs(rig.rest_positions(1.75, child)) / legs(rig.rest_positions(1.75))
    assert ratio < 0.9  # the child's legs are shorter at the same height
    entries, report = clip_mod.load_clip(bvh_path, height=1.75, naming="mannequin", shape="child")
    np.testing.assert_allclose([e["offset"][1] for e in entries], [-0.2 * i * ratio for i in range(3)], atol=2e-3)
    assert f"root motion scale: {ratio:.4f}" in report
    body = mq.build(1.75, "average", child)
    assert min(retarget.lowest_foot(body, e) for e in entries) == pytest.approx(0.0, abs=2e-3)


def test_the_viewer_shows_the_shaped_body():
    """The 3D viewer's rest mesh (GET /pose_factory/viewer/mesh?shape=) and its posed scene are the
    shaped body's; a wrong shape is a 400 naming it."""
    from nodes import routes as R
    from pose_factory import viewer

    child = shape.normalize_shape("child", "shape")
    body = mq.build(1.5, "average", child)
    for got in (R.viewer_mesh({}, "1.5", "average", "child"),
                R.viewer_mesh({}, "1.5", "average", json.dumps({"preset": "child"}))):
        assert got["shape"] == child
        np.testing.assert_allclose(np.reshape(got["vertices"], (-1, 3)), body.all_vertices()[0], atol=1e-5)
    assert "shape" not in R.viewer_mesh({}, "1.5", "average", None)
    with pytest.raises(R.RouteError) as e:
        R.viewer_mesh({}, "1.5", "average", json.dumps({"head_ratio": 20}))
    assert "shape.head_ratio" in str(e.value)
    scene = viewer.scene({"subject": {"height": 1.5, "shape": "child"}, "poses": ["a_pose"]})
    assert scene["subject"]["shape"] == child
    posed = poses.pose_body(body, poses.normalize_pose_entry("a_pose", "pose"))
    np.testing.assert_allclose(np.reshape(scene["keypoints"], (-1, 3)), mq.posed_keypoints(body, posed), atol=1e-5)


def test_the_mannequin_nodes_shape_widgets():
    """The Mannequin node's widgets after `build` (shape.WIDGET_KEYS): proportions and numbers that
    override it (0 = the preset's); the default widgets give today's subject; errors name the widget."""
    from nodes.batch_nodes import build_spec
    from nodes.spec_nodes import PoseFactoryMannequin as Node

    inputs = Node.INPUT_TYPES()
    # optional: an API prompt written before them still validates
    assert list(inputs["required"]) == ["height", "build"] and list(inputs["optional"]) == list(shape.WIDGET_KEYS)
    defaults = {k: v[1]["default"] for k, v in {**inputs["required"], **inputs["optional"]}.items()}
    assert defaults["proportions"] == "adult" and all(defaults[k] == 0.0 for k in shape.PARAMS)
    assert Node().make(**defaults) == ({"type": "mannequin", "height": 1.75, "build": "average"},)
    assert Node().make(1.75, "average") == Node().make(**defaults)  # a workflow saved before the widgets
    (child,) = Node().make(**dict(defaults, height=1.2, proportions="child", leg_length=0.95))
    assert child["shape"] == {**shape.DEFAULTS, **shape.PRESETS["child"], "leg_length": 0.95}
    spec = build_spec(child, ["a_pose"], {"type": "orbit", "views": 1}, 64, 64)
    assert spec["subjects"][0]["shape"] == child["shape"]
    queued = {k: defaults[k] for k in ("height", *shape.WIDGET_KEYS)}  # what VALIDATE_INPUTS names
    assert Node.VALIDATE_INPUTS(**dict(queued, proportions="heroic", arm_length=1.1)) is True
    assert Node.VALIDATE_INPUTS(**dict(queued, head_ratio=3.0)) == "head_ratio: got 3.0, allowed: a number from 4 to 9"
    assert Node.VALIDATE_INPUTS(**dict(queued, proportions="giant")).startswith("proportions: got 'giant'")
    assert Node.VALIDATE_INPUTS(**dict(queued, head_ratio=None, arm_length=1.1)) is True  # linked: checked at run
    with pytest.raises(SpecError, match=r"^hip_width: got 0\.5, allowed: a number from 0\.75 to 1\.35"):
        Node().make(**dict(defaults, hip_width=0.5))


def test_visibility_radii_scale_with_the_shaped_parts():
    """The radius within which a ray's hit still reaches a keypoint (mannequin.visibility_rules)
    follows the part it lies in: the face's with the skull, the hands' with the arms; the default
    body's radii are the ones every batch used before."""
    plain, _ = mq.visibility_rules()
    for height, build in ((1.75, "average"), (1.3, "heavy")):
        assert mq.visibility_rules(mq.build(height, build))[0].tobytes() == plain.tobytes()
    assert plain[mq.KP_FACE].tolist() == [0.015] * mq.N_FACE and plain[mq.KP_LHAND.start] == 0.05

    def skull_height(body):
        return np.ptp(_skull(body)[:, 2])

    def reach(body):
        return np.linalg.norm(_joint(body, "l_middle4") - _joint(body, "l_shoulder"))

    adult = mq.build(1.75, "average")
    for name in ("child", "heroic", "anime"):
        body = mq.build(1.75, "average", shape.normalize_shape(name, "shape"))
        radius, _ = mq.visibility_rules(body)
        face = radius[mq.KP_FACE] / plain[mq.KP_FACE]
        np.testing.assert_allclose(face, skull_height(body) / skull_height(adult), rtol=1e-9)
        np.testing.assert_allclose(radius[14:18] / plain[14:18], skull_height(body) / skull_height(adult), rtol=1e-9)
        np.testing.assert_allclose(radius[mq.KP_RHAND] / plain[mq.KP_RHAND], reach(body) / reach(adult), rtol=1e-9)
