"""The whole render engine through its real entry (one Blender process per batch) into a
local-folder store: files, sizes, passes, keypoints, visibility, determinism."""
import json

import numpy as np
import pytest

from pose_factory import imageio, render, spec as spec_mod, storage as storage_mod
from pose_factory.render import mannequin as mq

pytestmark = pytest.mark.blender
W, H = 192, 256


def make_spec(poses, views=4, **render_opts):
    return {"schema_version": "1.0", "kind": "pose_batch", "project": "tests",
            "render": dict({"width": W, "height": H, "shaded_samples": 4}, **render_opts),
            "cameras": {"type": "orbit", "views": views, "elevation": 5},
            "subjects": [{"type": "mannequin", "poses": poses}]}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    store = storage_mod.LocalStorage(root)
    seen = []
    manifest, rendered = render.render_batch(make_spec(["a_pose", "walk_left_step"]), store, on_progress=seen.append)
    folder = root / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    return {"store": store, "root": root, "manifest": manifest, "rendered": rendered, "folder": folder,
            "progress": seen}


def read(batch, entry, name):
    return imageio.read_png(str(batch["folder"] / entry["files"][name]["key"]))


def test_every_file_exists_with_size_dtype_and_channels(batch):
    m = batch["manifest"]
    assert batch["rendered"] and len(m["entries"]) == 8
    expect = {"openpose": (3, np.uint8), "depth": (3, np.uint8), "depth16": (None, np.uint16),
              "normal": (3, np.uint8), "normal_opengl": (3, np.uint8), "normal_directx": (3, np.uint8),
              "seg": (3, np.uint8), "mask": (None, np.uint8), "parts": (None, np.uint8), "shaded": (3, np.uint8)}
    for e in m["entries"]:
        assert set(expect) | {"keypoints"} == set(e["files"])
        for name, (ch, dtype) in expect.items():
            img = read(batch, e, name)
            assert img.shape[:2] == (H, W) and img.dtype == dtype, name
            assert (img.ndim == 2) if ch is None else (img.shape[2] == ch), name


def test_mask_seg_parts_and_depth_agree(batch):
    for e in batch["manifest"]["entries"]:
        mask = read(batch, e, "mask") > 0
        parts = read(batch, e, "parts")
        assert mask.sum() > 0.05 * W * H
        assert ((parts > 0) == mask).all()
        assert set(np.unique(parts[mask])) <= set(range(1, len(mq.PARTS) + 1))
        seg = read(batch, e, "seg")
        assert (seg[mask] == (150, 5, 61)).all() and (seg[~mask] == 0).all()
        d16 = read(batch, e, "depth16")
        assert ((d16 > 0) == mask).all()


def test_depth_brighter_where_nearer_and_one_range_per_batch(batch):
    lows, highs = [], []
    for e in batch["manifest"]["entries"]:
        mask = read(batch, e, "mask") > 0
        d8 = read(batch, e, "depth")[..., 0].astype(int)
        d16 = read(batch, e, "depth16").astype(int)
        assert (d8[~mask] == 0).all() and d8[mask].min() >= 38  # never as dark as the background
        # nearer (smaller mm) → brighter: rank correlation over the subject is strongly negative
        a, b = d16[mask], d8[mask]
        assert np.corrcoef(a, b)[0, 1] < -0.95
        lows.append(d8[mask].min())
        highs.append(d8[mask].max())
    # one range for the batch: only one image reaches full white, and one reaches the floor
    assert max(highs) == 255 and min(lows) == 38
    assert sum(h == 255 for h in highs) < len(highs) or len(highs) == 1


def test_keypoints_json_is_pose_keypoint_with_visibility(batch):
    m = batch["manifest"]
    front = next(e for e in m["entries"] if e["view"] == 0 and e["frame"] == 0)
    kp = json.loads((batch["folder"] / front["files"]["keypoints"]["key"]).read_text())
    assert kp["canvas_width"] == W and kp["canvas_height"] == H
    person = kp["people"][0]
    body = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    assert len(person["hand_left_keypoints_2d"]) == 63 and len(person["face_keypoints_2d"]) == 210
    # frontal A-pose: all 18 body points visible
    assert (body[:, 2] == 1.0).all(), body
    assert ((body[:, 0] >= 0) & (body[:, 0] < W) & (body[:, 1] >= 0) & (body[:, 1] < H)).all()


def test_openpose_image_draws_the_keypoints(batch):
    e = batch["manifest"]["entries"][0]
    img = read(batch, e, "openpose")
    kp = json.loads((batch["folder"] / e["files"]["keypoints"]["key"]).read_text())
    body = np.array(kp["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    for x, y, c in body:
        if c == 1.0:
            assert img[int(round(y)), int(round(x))].max() > 0


def test_manifest_cameras_and_progress(batch):
    m = batch["manifest"]
    assert len(m["views"]) == 4 and m["frames"] == 2
    for cam in m["views"]:
        k = cam["intrinsics"]
        assert k["width"] == W and k["height"] == H and k["fx"] > 0
    states = [p["state"] for p in batch["progress"]]
    assert "rendering" in states and states[-1] == "completed"


def test_same_spec_is_not_rendered_twice(batch):
    manifest, rendered = render.render_batch(make_spec(["a_pose", "walk_left_step"]), batch["store"])
    assert not rendered and manifest["batch_id"] == batch["manifest"]["batch_id"]


def test_determinism_identical_files_and_new_id_for_new_recipe(batch, tmp_path, monkeypatch):
    store = storage_mod.LocalStorage(tmp_path)
    manifest, rendered = render.render_batch(make_spec(["a_pose", "walk_left_step"]), store)
    assert rendered and manifest["batch_id"] == batch["manifest"]["batch_id"]
    for a, b in zip(manifest["entries"], batch["manifest"]["entries"]):
        for name in a["files"]:
            assert a["files"][name]["sha256"] == b["files"][name]["sha256"], name
    spec = spec_mod.normalize_spec(make_spec(["a_pose", "walk_left_step"]))
    assert spec_mod.batch_id(spec, spec_mod.RECIPE_VERSION + 1) != manifest["batch_id"]


def test_hips_covered_by_the_abdomen_seen_from_below_are_hidden(tmp_path):
    # lying face down, seen from below at the side: the abdomen lies 11 cm in front of both hips
    spec = make_spec(["lying_front"], views=1, passes=["keypoints"])
    spec["cameras"] = {"type": "orbit", "views": 1, "elevation": -60, "start_azimuth": 90}
    manifest, _ = render.render_batch(spec, storage_mod.LocalStorage(tmp_path))
    e = manifest["entries"][0]
    folder = tmp_path / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    body = np.array(json.loads((folder / e["files"]["keypoints"]["key"]).read_text())["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    names = mq.BODY_KEYPOINTS
    for n in ("r_hip", "l_hip"):
        assert body[names.index(n), 2] < 1.0, n
    for n in ("r_knee", "l_knee"):  # the thighs are in plain view
        assert body[names.index(n), 2] == 1.0, n


def test_arm_behind_torso_in_side_view_is_hidden(tmp_path):
    # the left arm hangs straight; a camera on the subject's right (azimuth 270) sees the torso
    # and the right arm in front of it
    spec = make_spec([{"preset": "rest"}], views=1, passes=["keypoints"])
    spec["cameras"] = {"type": "orbit", "views": 1, "elevation": 0, "start_azimuth": 270}
    manifest, _ = render.render_batch(spec, storage_mod.LocalStorage(tmp_path))
    e = manifest["entries"][0]
    folder = tmp_path / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    body = np.array(json.loads((folder / e["files"]["keypoints"]["key"]).read_text())["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    names = mq.BODY_KEYPOINTS
    for n in ("l_elbow", "l_wrist", "l_shoulder", "l_eye", "l_ear"):
        assert body[names.index(n), 2] == 0, n
    # the neck (OpenPose's midpoint of the shoulders) behind the near shoulder is seen, as a detector places it
    for n in ("neck", "r_elbow", "r_wrist", "r_shoulder", "nose", "r_eye", "r_ear", "r_knee", "r_ankle"):
        assert body[names.index(n), 2] == 1.0, n


def test_smallest_size_non_square_renders(tmp_path):
    spec = make_spec(["standing"], views=1, passes=["keypoints", "depth", "seg"])
    spec["render"].update(width=64, height=96)
    manifest, _ = render.render_batch(spec, storage_mod.LocalStorage(tmp_path))
    folder = tmp_path / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    e = manifest["entries"][0]
    assert set(e["files"]) == {"keypoints", "depth", "seg", "mask", "parts"}
    for name in ("depth", "seg", "mask", "parts"):
        assert imageio.read_png(str(folder / e["files"][name]["key"])).shape[:2] == (96, 64)


def test_default_shaded_matches_a_many_sample_render(tmp_path):
    """shaded_samples 1 takes the clay from the data render and smooths its edges; it must look
    like a real anti-aliased Cycles render of the same scene."""
    images = []
    for samples in (1, 16):
        spec = make_spec(["waving"], views=1, passes=["shaded"], shaded_samples=samples)
        manifest, _ = render.render_batch(spec, storage_mod.LocalStorage(tmp_path / str(samples)))
        folder = tmp_path / str(samples) / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
        images.append(imageio.read_png(str(folder / manifest["entries"][0]["files"]["shaded"]["key"])).astype(int))
    diff = np.abs(images[0] - images[1])
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 40
