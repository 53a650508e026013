"""Joints the body covers (issue 16), on a real render: a walking pose and the rest pose seen from
the subject's right side (azimuth 270), so the left arm and leg are the far ones.

- hide is today's image: the stored OpenPose image, controlnet-aux's drawing of our POSE_KEYPOINT
  and ours with our field removed are the same pixels;
- show and depth draw the far arm and leg (and the hand behind the body);
- in depth the near limbs' pixels win where limbs overlap, against a drawing of the near limbs alone;
- the covered points' positions are the manifest's 3D joints projected by the manifest's camera
  (within 0.5 px), their depths the camera depth;
- core's SDPose drawing and controlnet-aux's, run on our POSE_KEYPOINT, draw exactly the visible
  points (tests/oracles.py loads both from their own files);
- the loader redraws from the keypoints for another choice, and the spec's choice reaches the worker.
"""
import copy
import json

import numpy as np
import pytest

from oracles import controlnet_aux_util, oracle_draw, sdpose_draw_node, sdpose_source
from pose_factory import loading, settings as settings_mod
from pose_factory.render import openpose as op
from pose_factory.render import mannequin as mq
from pose_factory.imageio import read_png
from pose_factory.render import render_batch
from pose_factory.storage import LocalStorage, batch_prefix

pytestmark = pytest.mark.blender
W, H = 256, 384
WALK, REST = 0, 1
NEAR = {"arm": (2, 3, 4), "leg": (8, 9, 10)}  # right shoulder, elbow, wrist; right hip, knee, ankle
FAR = {"arm": (5, 6, 7), "leg": (11, 12, 13)}
NO_EXTRAS = {"hands": False, "face": False}


def side_spec(occluded="hide"):
    return {"project": "side", "render": {"width": W, "height": H, "passes": ["openpose", "keypoints"],
                                          "openpose": {"occluded": occluded}},
            "cameras": {"type": "orbit", "views": 1, "elevation": 0, "start_azimuth": 270},
            "subjects": [{"type": "mannequin", "poses": ["walk_left_step", "rest"]}]}


@pytest.fixture(scope="module")
def side(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("occluded")
    store = LocalStorage(tmp / "store")
    manifest, _ = render_batch(side_spec(), store)
    folder = tmp / "store" / batch_prefix(manifest["project"], manifest["batch_id"])
    keypoints = [json.loads((folder / e["files"]["keypoints"]["key"]).read_text()) for e in manifest["entries"]]
    stored = [read_png(str(folder / e["files"]["openpose"]["key"])) for e in manifest["entries"]]
    return {"tmp": tmp, "store": store, "manifest": manifest, "folder": folder, "kp": keypoints, "stored": stored}


def body(frame, which="public"):
    person = frame["people"][0]
    flat = person["pose_keypoints_2d"] if which == "public" else person[op.OWN_KEY]["occluded"]["pose_keypoints_2d"]
    return np.array(flat).reshape(18, 3)


def only(frame, keep):
    """The frame with the body points not in `keep` removed (readers' list and ours)."""
    out = copy.deepcopy(frame)
    person = out["people"][0]
    for flat in (person["pose_keypoints_2d"], person[op.OWN_KEY]["occluded"]["pose_keypoints_2d"]):
        for i in set(range(18)) - set(keep):
            flat[3 * i:3 * i + 3] = [0.0, 0.0, 0.0]
    return out


def without_own(frame):
    out = copy.deepcopy(frame)
    for person in out["people"]:
        del person[op.OWN_KEY]
    return out


def promoted(frame, parts=op.PART_KEYS, points=None):
    """The frame as if covered points (all, or `points` of the body) were visible to readers."""
    out = without_own(frame)
    person, mine = out["people"][0], frame["people"][0][op.OWN_KEY]["occluded"]
    for key in parts:
        for i in range(len(mine[key]) // 3):
            if mine[key][3 * i + 2] == 1.0 and (points is None or i in points):
                person[key][3 * i:3 * i + 3] = mine[key][3 * i:3 * i + 3]
    return out


def covered_body(frame):
    return [i for i in range(18) if body(frame, "covered")[i, 2] == 1.0]


def pixels_of(img, color):
    return int((img == color).all(axis=2).sum())


# --- hide: today's image ------------------------------------------------------------------------
def test_hide_is_todays_image(side):
    util = controlnet_aux_util()
    for kp, stored in zip(side["kp"], side["stored"]):
        assert covered_body(kp)  # there is something the body covers
        today = op.draw_pose(without_own(kp))  # what this frame drew before the field existed
        assert np.array_equal(stored, today)
        assert np.array_equal(op.draw_pose(kp, occluded="hide"), today)
        assert np.array_equal(oracle_draw(util, kp), today)  # the annotator's own drawing, visible points only


# --- show and depth: every limb -------------------------------------------------------------------
def test_show_and_depth_draw_the_far_arm_and_leg(side):
    kp = side["kp"][WALK]
    hidden = covered_body(kp)
    assert {5, 11} <= set(hidden)  # the far shoulder and hip are behind the body
    drawn = {mode: op.draw_pose(kp, occluded=mode, **NO_EXTRAS) for mode in op.OCCLUDED_MODES}
    far_limbs = [i for i, (a, b) in enumerate(op.LIMB_SEQ) if {a, b} <= set(FAR["arm"] + FAR["leg"])]
    assert len(far_limbs) == 4  # upper arm, forearm, thigh, shin
    for i in far_limbs:
        a, b = op.LIMB_SEQ[i]
        color = [int(c * 0.6) for c in op.BODY_COLORS[i]]
        hide = pixels_of(drawn["hide"], color)
        assert pixels_of(drawn["show"], color) > 100 and pixels_of(drawn["depth"], color) > 30, op.BODY_NAMES[a]
        if a in hidden or b in hidden:
            assert hide == 0, f"limb {op.BODY_NAMES[a]}-{op.BODY_NAMES[b]} has a covered end: not drawn in hide"
    for j in (5, 11):  # the covered joints themselves
        assert pixels_of(drawn["hide"], op.BODY_COLORS[j]) == 0
        assert pixels_of(drawn["show"], op.BODY_COLORS[j]) > 0 and pixels_of(drawn["depth"], op.BODY_COLORS[j]) > 0


def test_a_hand_behind_the_body_is_drawn_only_in_show_and_depth(side):
    kp = side["kp"][REST]
    person = kp["people"][0]
    assert not any(person["hand_left_keypoints_2d"][2::3])  # the far hand: all covered
    assert all(person[op.OWN_KEY]["occluded"]["hand_left_keypoints_2d"][2::3])
    left_hand = copy.deepcopy(kp)
    p = left_hand["people"][0]
    for key in ("pose_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d"):
        p[key] = [0.0] * len(p[key])
        p[op.OWN_KEY]["occluded"][key] = [0.0] * len(p[key])
    assert not op.draw_pose(left_hand, occluded="hide").any()
    for mode in ("show", "depth"):
        img = op.draw_pose(left_hand, occluded=mode)
        assert pixels_of(img, op.HAND_JOINT_COLOR) > 100
        assert not op.draw_pose(left_hand, occluded=mode, hands=False).any()


def test_in_depth_the_near_limbs_win_where_limbs_overlap(side):
    kp = side["kp"][WALK]
    depth = op.draw_pose(kp, occluded="depth", **NO_EXTRAS)
    show = op.draw_pose(kp, occluded="show", **NO_EXTRAS)
    near = NEAR["arm"] + NEAR["leg"]
    near_alone = op.draw_pose(only(kp, near), occluded="depth", **NO_EXTRAS)
    checked = 0
    for far in (FAR["arm"] + FAR["leg"], tuple(set(range(18)) - set(near))):  # the far limbs; everything else
        overlap = near_alone.any(axis=2) & op.draw_pose(only(kp, far), occluded="depth", **NO_EXTRAS).any(axis=2)
        checked += int(overlap.sum())
        assert (depth[overlap] == near_alone[overlap]).all()
        # in the annotator's order (show) the left limbs come after the right ones and cover them
        assert not (show[overlap] == near_alone[overlap]).all()
    assert checked > 50


# --- the data ------------------------------------------------------------------------------------
def reproject(manifest, frame, view=0):
    """(130, 2) pixels and (130,) depths of the manifest's 3D keypoints, from its camera matrices
    (Blender's camera looks down its -Z; pixel centres at integer coordinates)."""
    cam = manifest["views"][view]
    k = cam["intrinsics"]
    pts = np.array(manifest["joints_3d"][frame]["keypoints"], float)
    c = (np.array(cam["extrinsics"]["world_to_camera"]) @ np.c_[pts, np.ones(len(pts))].T).T
    z = -c[:, 2]
    return np.c_[k["cx"] + k["fx"] * c[:, 0] / z, k["cy"] - k["fy"] * c[:, 1] / z], z


def test_covered_points_carry_their_true_projected_positions(side):
    m = side["manifest"]
    n_covered = 0
    for e, kp in zip(m["entries"], side["kp"]):
        xy, z = reproject(m, e["frame"])
        person = kp["people"][0]
        for key, sl in zip(op.PART_KEYS, (mq.KP_BODY, mq.KP_LHAND, mq.KP_RHAND, mq.KP_FACE)):
            public = np.array(person[key]).reshape(-1, 3)
            covered = np.array(person[op.OWN_KEY]["occluded"][key]).reshape(-1, 3)
            depth = np.array(person[op.OWN_KEY]["depth"][key])
            want, want_z = xy[sl], z[sl]
            hid = covered[:, 2] == 1.0
            vis = public[:, 2] == 1.0
            assert not (hid & vis).any()
            n_covered += int(hid.sum())
            err = np.abs(covered[hid, :2] - want[hid]).max(initial=0.0)
            assert err <= 0.5, f"{key}: covered point {err:.3f} px from the reprojected 3D joint"
            assert np.abs(public[vis, :2] - want[vis]).max(initial=0.0) <= 0.5
            inside = (want_z > 0) & (want[:, 0] >= -0.5) & (want[:, 0] < W - 0.5) & (want[:, 1] >= -0.5) \
                & (want[:, 1] < H - 0.5)
            assert ((hid | vis) == inside).all()  # every point in the frame is somewhere; outside ones 0, 0, 0
            assert (public[~vis] == 0).all() and (covered[~hid] == 0).all() and (depth[~inside] == 0).all()
            assert np.abs(depth[inside] - want_z[inside]).max(initial=0.0) < 1e-4
    assert n_covered > 40  # far shoulder and hip, hidden hand, far side of the face...


# --- other packs' readers see only the visible points --------------------------------------------------
def test_controlnet_aux_draws_exactly_the_visible_points(side):
    util = controlnet_aux_util()
    for kp in side["kp"]:
        ours = oracle_draw(util, kp)
        assert np.array_equal(ours, oracle_draw(util, without_own(kp)))
        everything = oracle_draw(util, promoted(kp))
        assert not np.array_equal(ours, everything)  # the covered points would show, were they given to it
        assert np.array_equal(everything, op.draw_pose(kp, occluded="show"))  # show is the annotator, all points


@pytest.fixture(scope="module")
def sdpose():
    path = sdpose_source()
    if path is None:
        pytest.skip("ComfyUI core's comfy_extras/nodes_sdpose.py not found: set COMFYUI_DIR to a ComfyUI checkout "
                    "(scripts/comfy_harness_check.sh sets one up in ~/.cache/comfy-harness)")
    return sdpose_draw_node(path)


def test_core_sdpose_draws_exactly_the_visible_points(side, sdpose):
    for kp in side["kp"]:
        ours = sdpose([kp])[0]
        assert ours.any() and np.array_equal(ours, sdpose([without_own(kp)])[0])
        # any threshold it offers above 0: our covered points (c = 0) stay undrawn
        for threshold in (0.01, 0.3, 1.0):
            assert np.array_equal(sdpose([kp], score_threshold=threshold)[0],
                                  sdpose([without_own(kp)], score_threshold=threshold)[0])
        # each covered body point, given to it, would change the image: so none is drawn now ...
        for j in covered_body(kp):
            assert not np.array_equal(ours, sdpose([promoted(kp, points={j})])[0]), op.BODY_NAMES[j]
        # ... and each visible one is drawn: taking it away changes the image
        for j in np.flatnonzero(body(kp)[:, 2] == 1.0):
            gone = without_own(kp)
            gone["people"][0]["pose_keypoints_2d"][3 * j:3 * j + 3] = [0.0, 0.0, 0.0]
            assert not np.array_equal(ours, sdpose([gone])[0]), op.BODY_NAMES[j]
        hands_face = op.PART_KEYS[1:]
        assert not np.array_equal(ours, sdpose([promoted(kp, parts=hands_face)])[0])


# --- the loader and the spec ----------------------------------------------------------------------
def test_loader_redraws_for_another_choice_and_the_spec_choice_reaches_the_worker(side):
    settings = settings_mod.load_settings(overrides={"storage": {"local_root": str(side["tmp"] / "store"),
                                                                 "cache_root": str(side["tmp"] / "cache")}})
    m, folder = loading.fetch_batch(settings, "side", side["manifest"]["batch_id"], loading.POSE_PASSES)
    entries = loading.select_entries(m)
    for mode in op.OCCLUDED_MODES:
        got = loading.load_pose(folder, m, entries, occluded=mode)["openpose"]
        want = [op.draw_pose(kp, occluded=mode) for kp in side["kp"]]
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), mode
    with pytest.raises(ValueError, match="occluded: got 'all', allowed: one of as rendered, hide, show, depth"):
        loading.load_pose(folder, m, entries, occluded="all")
    # Request Pose Batch's choice: the worker draws the stored images with it; keypoints are the same
    manifest, rendered = render_batch(side_spec("depth"), side["store"])
    assert rendered and manifest["batch_id"] != side["manifest"]["batch_id"]
    other = side["tmp"] / "store" / batch_prefix(manifest["project"], manifest["batch_id"])
    for e, kp in zip(manifest["entries"], side["kp"]):
        assert json.loads((other / e["files"]["keypoints"]["key"]).read_text()) == kp
        assert np.array_equal(read_png(str(other / e["files"]["openpose"]["key"])), op.draw_pose(kp, occluded="depth"))


def test_load_pose_node_takes_occluded(side, monkeypatch):
    from test_nodes import load_pack_like_comfyui

    cfg = side["tmp"] / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(side["tmp"] / "store"),
                                           "cache_root": str(side["tmp"] / "node_cache")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    node = load_pack_like_comfyui().NODE_CLASS_MAPPINGS["PoseFactoryLoadPoseFromR2"]()
    args = dict(project="side", batch_id=side["manifest"]["batch_id"], views="all", frames="all", order="view_major",
                hands=True, face=True)
    for mode in op.OCCLUDED_MODES:
        images, keypoints, _ = node.load(**args, occluded=mode)["result"]
        assert keypoints == side["kp"]
        got = np.rint(images.numpy() * 255).astype(np.uint8)
        assert all(np.array_equal(g, op.draw_pose(kp, occluded=mode)) for g, kp in zip(got, side["kp"])), mode
    (images, _, _) = node.load(**args)["result"]  # a workflow saved before the input existed: as rendered
    assert np.array_equal(np.rint(images[0].numpy() * 255).astype(np.uint8), side["stored"][0])


def test_a_loader_left_at_its_default_draws_what_the_request_asked_for(side, monkeypatch):
    """Issue 21.9: a batch requested with occluded depth came back drawn with hide from a loader
    left at its default; the default now follows the manifest's spec, an explicit choice overrides."""
    from test_nodes import load_pack_like_comfyui

    manifest, _ = render_batch(side_spec("depth"), side["store"])
    cfg = side["tmp"] / "config_default.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(side["tmp"] / "store"),
                                           "cache_root": str(side["tmp"] / "default_cache")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    cls = load_pack_like_comfyui().NODE_CLASS_MAPPINGS["PoseFactoryLoadPoseFromR2"]
    defaults = {n: spec[1]["default"] for n, spec in cls.INPUT_TYPES()["required"].items()}
    defaults.update(project="side", batch_id=manifest["batch_id"])
    occluded_default = cls.INPUT_TYPES()["optional"]["occluded"][1]["default"]

    def drawn(**kw):
        return [np.rint(i.numpy() * 255).astype(np.uint8) for i in cls().load(**defaults, **kw)["result"][0]]

    for got, kp in zip(drawn(occluded=occluded_default), side["kp"]):  # the widget's default, as a new node has it
        assert np.array_equal(got, op.draw_pose(kp, occluded="depth"))
        assert not np.array_equal(got, op.draw_pose(kp, occluded="hide"))
    for got, kp in zip(drawn(), side["kp"]):  # an API prompt that leaves the optional input out
        assert np.array_equal(got, op.draw_pose(kp, occluded="depth"))
    for got, kp in zip(drawn(occluded="hide"), side["kp"]):  # an explicit choice still overrides
        assert np.array_equal(got, op.draw_pose(kp, occluded="hide"))
