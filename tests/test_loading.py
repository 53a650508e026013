"""The loaders' core (pose_factory.loading) and the cache fast path of pose_factory.storage.download, on a
real batch rendered with bpy."""
import json
import shutil

import numpy as np
import pytest

from pose_factory import loading, settings as settings_mod
from pose_factory.storage import download, index
from pose_factory.render import openpose
from pose_factory.errors import SpecError
from pose_factory.imageio import read_png
from pose_factory.render.mannequin import PART_LABEL
from pose_factory.render.passes import DEPTH_FLOOR, NORMAL_DIRS
from pose_factory.render import render_batch
from pose_factory.storage import LocalStorage

W, H = 96, 64
SPEC = {"render": {"width": W, "height": H},
        "cameras": {"type": "orbit", "views": 3, "elevation": 5},
        "subjects": [{"type": "mannequin", "poses": ["a_pose", {"preset": "waving", "hands": "open"}]}]}


class CountingStorage(LocalStorage):
    """A LocalStorage that counts every call that reads or lists."""

    def __init__(self, root):
        super().__init__(root)
        self.calls = 0

    def get_bytes(self, key):
        self.calls += 1
        return super().get_bytes(key)

    def exists(self, key):
        self.calls += 1
        return super().exists(key)

    def list(self, prefix=""):
        self.calls += 1
        return super().list(prefix)


# --- selection (no render) -------------------------------------------------------------------------
def test_parse_indices_forms():
    assert loading.parse_indices("all", 4, "views") == [0, 1, 2, 3]
    assert loading.parse_indices("", 3, "views") == [0, 1, 2]
    assert loading.parse_indices("0,2", 4, "views") == [0, 2]
    assert loading.parse_indices("0-3", 4, "views") == [0, 1, 2, 3]
    assert loading.parse_indices(" 3-1 , 0 ", 4, "views") == [3, 2, 1, 0]
    assert loading.parse_indices("2,2,0-2", 4, "frames") == [2, 0, 1]
    assert loading.parse_indices(1, 4, "frames") == [1]


@pytest.mark.parametrize("text,bad", [("9", "'9'"), ("0-4", "'4'"), ("a", "'a'"), ("1,,2", "empty"), ("-1", "'-1'")])
def test_parse_indices_errors_name_field_and_range(text, bad):
    with pytest.raises(SpecError) as e:
        loading.parse_indices(text, 4, "views")
    msg = str(e.value)
    assert msg.startswith("views: ") and bad in msg and "allowed: 0..3 for this batch" in msg
    assert isinstance(e.value, ValueError) and e.value.field == "views"


def test_parse_parts():
    assert loading.parse_parts("hands") == [PART_LABEL["hand_l"], PART_LABEL["hand_r"]]
    assert loading.parse_parts("head, feet thigh_l") == sorted(
        [PART_LABEL["head"], PART_LABEL["foot_l"], PART_LABEL["foot_r"], PART_LABEL["thigh_l"]])
    assert loading.parse_parts("all") == list(range(1, 18))
    assert loading.parse_parts("") == []
    with pytest.raises(SpecError, match=r"parts: got 'tail', allowed: groups all, head"):
        loading.parse_parts("hands, tail")


def test_grid_tiles_in_order_and_fits():
    imgs = np.stack([np.full((10, 20, 3), i * 40, np.uint8) for i in range(5)])
    g = loading.grid(imgs, max_side=1000, gap=2)
    assert g.shape == (2 * 10 + 2, 3 * 20 + 2 * 2, 3)  # 5 images: 3 columns, 2 rows
    assert (g[0, 0] == 0).all() and (g[0, 22] == 40).all() and (g[12, 22] == 160).all()
    small = loading.grid(np.zeros((8, 512, 512, 3), np.uint8), max_side=256)
    assert max(small.shape[:2]) <= 256


def test_select_entries_rejects_bad_order():
    m = {"views": [{}, {}], "frames": 1, "entries": [{"view": 0, "frame": 0, "files": {}},
                                                      {"view": 1, "frame": 0, "files": {}}]}
    with pytest.raises(SpecError, match="order: got 'random', allowed: one of view_major, frame_major"):
        loading.select_entries(m, order="random")


# --- a real batch ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loading")
    storage = CountingStorage(tmp / "store")
    manifest, rendered = render_batch(SPEC, storage, project="demo")
    assert rendered
    settings = settings_mod.load_settings(overrides={"storage": {"local_root": str(tmp / "store"),
                                                                 "cache_root": str(tmp / "cache")}})
    return {"tmp": tmp, "storage": storage, "manifest": manifest, "settings": settings,
            "src": tmp / "store" / "projects" / "demo" / "batches" / manifest["batch_id"]}


def fetched(batch, names=None):
    names = names or ("openpose", "keypoints", "shaded", "depth", "depth16", "normal", "normal_opengl",
                      "normal_directx", "seg", "mask", "parts")
    return loading.fetch_batch(batch["settings"], "demo", batch["manifest"]["batch_id"], names,
                               storage=batch["storage"])


def png(batch, key):
    return read_png(str(batch["src"] / key))


@pytest.mark.blender
def test_fetch_then_cached_load_touches_no_storage(batch, tmp_path):
    settings = settings_mod.load_settings(overrides={"storage": {"local_root": str(batch["tmp"] / "store"),
                                                                 "cache_root": str(tmp_path / "cache")}})
    storage, bid = batch["storage"], batch["manifest"]["batch_id"]
    storage.calls = 0
    m1, folder = loading.fetch_batch(settings, "demo", bid, ["openpose", "keypoints"], storage=storage)
    assert storage.calls > 0 and (folder / "openpose" / "v00_f0000.png").is_file()
    assert not (folder / "shaded").exists()  # only what was asked
    assert index.batches(settings["storage"]["cache_root"], "demo") == [bid]
    storage.calls = 0
    m2, folder2 = loading.fetch_batch(settings, "demo", bid, ["openpose", "keypoints"], storage=storage)
    assert storage.calls == 0 and m2 == m1 and folder2 == folder
    # a pass not cached yet: fetched, the rest kept
    m3, _ = loading.fetch_batch(settings, "demo", bid, ["shaded"], storage=storage)
    assert storage.calls > 0 and (folder / "shaded" / "v01_f0001.png").is_file()
    # a re-render (new created_at in the index) is not served from the stale cache
    cache_root = settings["storage"]["cache_root"]
    assert download.cached_batch(cache_root, "demo", bid, ["openpose"], created_at=m1["created_at"]) is not None
    assert download.cached_batch(cache_root, "demo", bid, ["openpose"], created_at="2000-01-01T00:00:00+00:00") is None
    # a damaged cache file (wrong size) is not served
    (folder / "openpose" / "v00_f0000.png").write_bytes(b"x")
    assert download.cached_batch(cache_root, "demo", bid, ["openpose"]) is None
    storage.calls = 0
    loading.fetch_batch(settings, "demo", bid, ["openpose", "keypoints"], storage=storage)
    assert storage.calls > 0
    key = "openpose/v00_f0000.png"
    assert (folder / key).read_bytes() == (batch["src"] / key).read_bytes()


@pytest.mark.blender
def test_fetch_without_storage_after_it_is_gone(batch, tmp_path):
    """Copy the batch's storage, load once, delete the copy: the second load still works."""
    store = tmp_path / "store"
    shutil.copytree(batch["tmp"] / "store", store)
    settings = settings_mod.load_settings(overrides={"storage": {"local_root": str(store),
                                                                 "cache_root": str(tmp_path / "cache")}})
    bid = batch["manifest"]["batch_id"]
    m1, _ = loading.fetch_batch(settings, "demo", bid, loading.POSE_PASSES)
    shutil.rmtree(store)
    m2, folder = loading.fetch_batch(settings, "demo", bid, loading.POSE_PASSES)
    assert m1 == m2
    pose = loading.load_pose(folder, m2, loading.select_entries(m2))
    assert pose["openpose"].shape == (6, H, W, 3)


@pytest.mark.blender
def test_download_batch_cached_second_call_reads_only_the_manifest(batch, tmp_path):
    storage, bid = batch["storage"], batch["manifest"]["batch_id"]
    download.download_batch(storage, "demo", bid, tmp_path, names=["openpose"])
    storage.calls = 0
    download.download_batch(storage, "demo", bid, tmp_path, names=["openpose"])
    assert storage.calls == 2  # exists + get_bytes of the manifest; no file fetched again
    storage.calls = 0
    download.download_batch(storage, "demo", bid, tmp_path, names=["openpose"], manifest=batch["manifest"])
    assert storage.calls == 0


@pytest.mark.blender
@pytest.mark.parametrize("order", ["view_major", "frame_major"])
def test_selection_order_picks_the_right_files(batch, order):
    m, folder = fetched(batch)
    entries = loading.select_entries(m, views="2,0", frames="all", order=order)
    pairs = [(e["view"], e["frame"]) for e in entries]
    if order == "view_major":
        assert pairs == [(2, 0), (2, 1), (0, 0), (0, 1)]
    else:
        assert pairs == [(2, 0), (0, 0), (2, 1), (0, 1)]
    pose = loading.load_pose(folder, m, entries)
    for i, (v, f) in enumerate(pairs):
        assert np.array_equal(pose["openpose"][i], png(batch, f"openpose/v{v:02d}_f{f:04d}.png"))
        assert np.array_equal(pose["shaded"][i], png(batch, f"shaded/v{v:02d}_f{f:04d}.png"))
        with open(batch["src"] / f"keypoints/v{v:02d}_f{f:04d}.json") as fh:
            assert pose["keypoints"][i] == json.load(fh)


@pytest.mark.blender
def test_selection_errors_name_the_batch_range(batch):
    m, _ = fetched(batch)
    with pytest.raises(SpecError, match=r"views: got '9', allowed: 0\.\.2 for this batch"):
        loading.select_entries(m, views="9")
    with pytest.raises(SpecError, match=r"frames: got '2', allowed: 0\.\.1 for this batch"):
        loading.select_entries(m, frames="0-2")


@pytest.mark.blender
def test_hands_and_face_off_redraw_from_keypoints(batch):
    m, folder = fetched(batch)
    entries = loading.select_entries(m, views="0", frames="1")
    full = loading.load_pose(folder, m, entries)["openpose"][0]
    no_hands = loading.load_pose(folder, m, entries, hands=False)["openpose"][0]
    no_face = loading.load_pose(folder, m, entries, face=False)["openpose"][0]
    kp = loading.read_keypoints(folder, entries, m)[0]
    assert np.array_equal(full, openpose.draw_pose(kp))  # what the worker stored is what draw_pose draws
    assert not np.array_equal(no_hands, full) and not np.array_equal(no_face, full)
    assert np.array_equal(no_hands, openpose.draw_pose(kp, hands=False, face=True))
    assert np.array_equal(no_face, openpose.draw_pose(kp, hands=True, face=False))


@pytest.mark.blender
def test_feet_on_redraws_with_the_foot_points_and_off_is_the_stored_image(batch):
    """issue 23.1: the keypoints carry the feet (core's foot_keypoints_2d, covered ones in our field);
    the stored image (feet off) is today's drawing, and the loader's feet redraws with them."""
    m, folder = fetched(batch)
    entries = loading.select_entries(m, views="0", frames="1")
    kp = loading.read_keypoints(folder, entries, m)[0]
    feet = kp["people"][0]["foot_keypoints_2d"]
    covered = kp["people"][0][openpose.OWN_KEY]["occluded"]["foot_keypoints_2d"]
    assert len(feet) == 18 and sum(feet[2::3]) + sum(covered[2::3]) == 6  # each in frame: seen or covered
    stored = loading.load_pose(folder, m, entries)["openpose"][0]
    without = json.loads(json.dumps(kp))
    del without["people"][0]["foot_keypoints_2d"]
    assert np.array_equal(stored, openpose.draw_pose(without))
    with_feet = loading.load_pose(folder, m, entries, feet=True)["openpose"][0]
    assert np.array_equal(with_feet, openpose.draw_pose(kp, feet=True)) and not np.array_equal(with_feet, stored)


def test_hide_redraws_without_the_points_and_unhidden_is_the_stored_batch(batch):
    # issue 23.2: hidden points are 0,0,0 in the keypoints, their place in our field, and the
    # skeleton is redrawn without them from the stored keypoints; no hide: the stored image
    m, folder = fetched(batch)
    entries = loading.select_entries(m, views="0-1", frames="1")
    stored = loading.read_keypoints(folder, entries, m)
    got = loading.load_pose(folder, m, entries, hide="left_hand, r_knee")
    plain = loading.load_pose(folder, m, entries)
    for frame, kp, img, img_plain, e in zip(got["keypoints"], stored, got["openpose"], plain["openpose"], entries):
        person, orig = frame["people"][0], kp["people"][0]
        assert person["hand_left_keypoints_2d"] == [0.0] * 63 and person["pose_keypoints_2d"][27:30] == [0.0] * 3
        assert orig["pose_keypoints_2d"][29] == 1.0 and any(orig["hand_left_keypoints_2d"][2::3])  # were there
        assert person[openpose.OWN_KEY]["hidden"]["keypoints"]["pose_keypoints_2d"][27:30] == orig["pose_keypoints_2d"][27:30]
        want = json.loads(json.dumps(kp))
        want["people"][0]["hand_left_keypoints_2d"] = [0.0] * 63
        want["people"][0]["pose_keypoints_2d"][27:30] = [0.0] * 3
        assert np.array_equal(img, openpose.draw_pose(want)) and not np.array_equal(img, img_plain)
        assert np.array_equal(img_plain, png(batch, e["files"]["openpose"]["key"]))  # un-hidden: as stored
    assert plain["keypoints"] == stored
    with pytest.raises(ValueError, match="hide: unknown joint or group 'tail'"):
        loading.load_pose(folder, m, entries, hide="tail")


@pytest.mark.blender
def test_depth_normal_seg_parts(batch):
    m, folder = fetched(batch)
    entries = loading.select_entries(m, order="frame_major")
    keys = [f"v{e['view']:02d}_f{e['frame']:04d}.png" for e in entries]
    got = loading.load_depth_normal(folder, m, entries, "batch", "controlnet", "hands, head")
    assert got["depth"].shape == (6, H, W, 3) and got["depth"].dtype == np.uint8
    for i, k in enumerate(keys):
        assert np.array_equal(got["depth"][i], png(batch, f"depth/{k}"))
        assert np.array_equal(got["normal"][i], png(batch, f"normal/{k}"))
        assert np.array_equal(got["seg"][i], png(batch, f"seg/{k}"))
        mask = png(batch, f"mask/{k}") > 127
        labels = png(batch, f"parts/{k}")
        assert got["subject"].dtype == np.float32 and np.array_equal(got["subject"][i] == 1.0, mask)
        want = np.isin(labels, [PART_LABEL["hand_l"], PART_LABEL["hand_r"], PART_LABEL["head"]])
        assert want.any() and np.array_equal(got["parts"][i] == 1.0, want)
        assert set(np.unique(got["parts"][i])) <= {0.0, 1.0}
    for conv in ("opengl", "directx"):
        other = loading.load_depth_normal(folder, m, entries[:1], "batch", conv, "")
        assert np.array_equal(other["normal"][0], png(batch, f"{NORMAL_DIRS[conv]}/{keys[0]}"))
        assert not np.array_equal(other["normal"][0], got["normal"][0])
        assert not other["parts"].any()


@pytest.mark.blender
def test_per_image_depth_spans_each_image(batch):
    m, folder = fetched(batch)
    entries = loading.select_entries(m)
    per_image = loading.load_depth_normal(folder, m, entries, "image")["depth"]
    per_batch = loading.load_depth_normal(folder, m, entries, "batch")["depth"]
    floor = round(DEPTH_FLOOR * 255)
    for i, e in enumerate(entries):
        k = f"v{e['view']:02d}_f{e['frame']:04d}.png"
        mask = png(batch, f"mask/{k}") > 127
        mm = png(batch, f"depth16/{k}")
        d = per_image[i, :, :, 0]
        assert (per_image[i, :, :, 0] == per_image[i, :, :, 2]).all()
        assert d[mask].max() == 255 and d[mask].min() == floor and (d[~mask] == 0).all()
        near = mm == mm[mask].min()
        assert (d[near & mask] == 255).all()
    # the batch range is shared, so not every image reaches both ends
    ends = [(per_batch[i, :, :, 0][per_batch[i, :, :, 0] > 0].min(), per_batch[i, :, :, 0].max())
            for i in range(len(entries))]
    assert any(lo != floor or hi != 255 for lo, hi in ends)


@pytest.mark.blender
def test_missing_pass_comes_back_none(batch, tmp_path):
    spec = json.loads(json.dumps(SPEC))
    spec["render"]["passes"] = ["openpose", "keypoints"]
    spec["cameras"]["views"] = 1
    storage = LocalStorage(tmp_path / "store")
    m, _ = render_batch(spec, storage, project="demo")
    settings = settings_mod.load_settings(overrides={"storage": {"local_root": str(tmp_path / "store"),
                                                                 "cache_root": str(tmp_path / "cache")}})
    m, folder = loading.fetch_batch(settings, "demo", m["batch_id"], loading.POSE_PASSES)
    pose = loading.load_pose(folder, m, loading.select_entries(m))
    assert pose["shaded"] is None and pose["openpose"].shape == (2, H, W, 3)
    assert loading.load_depth_normal(folder, m, loading.select_entries(m))["depth"] is None
