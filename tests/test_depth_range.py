"""The 8-bit depth's range (issue 8): taken from the rendered metric depth, so that no subject pixel
is ever clipped and the whole [floor, 1] span is used, for any camera; a batch rendered in shards
on two workers gets the same 8-bit depth as one worker."""
import asyncio

import numpy as np
import pytest

from pose_factory import imageio, render
from pose_factory.render import passes
from pose_factory.cli import DEMO_SPEC
from pose_factory.storage import LocalStorage, batch_prefix

pytestmark = pytest.mark.blender
FLOOR = int(round(passes.DEPTH_FLOOR * 255))


def spec(size, cameras, poses=("a_pose",), **render_opts):
    return {"schema_version": "1.0", "kind": "pose_batch", "project": "depth",
            "render": dict({"width": size, "height": size, "passes": ["keypoints", "depth", "depth16", "seg"]},
                           **render_opts),
            "cameras": cameras, "subjects": [{"type": "mannequin", "poses": list(poses)}]}


# a camera 0.35 m in front of the belly with a 300 mm lens: no mesh vertex is in frame
CLOSE_UP = spec(128, {"type": "list", "cameras": [
    {"location": [0.0, -0.45, 1.05], "look_at": [0.0, 0.0, 1.05], "focal_length": 300}]})
SPECS = {
    "demo": DEMO_SPEC,
    "close_up": CLOSE_UP,
    "steep_135mm": spec(160, {"type": "orbit", "views": 3, "elevation": -70, "roll": 30, "focal_length": 135},
                        poses=("running", "lying_front")),
    "per_image_18mm": spec(160, {"type": "orbit", "views": 2, "elevation": 60, "focal_length": 18,
                                 "distance": 1.2}, poses=("waving",), depth_range="image"),
}


def stored(tmp_path_factory, name):
    root = tmp_path_factory.mktemp(name)
    manifest, _ = render.render_batch(SPECS[name], LocalStorage(root), project="depth")
    folder = root / batch_prefix("depth", manifest["batch_id"])
    images = [{k: imageio.read_png(str(folder / e["files"][k]["key"])) for k in ("depth", "depth16", "mask")}
              for e in manifest["entries"]]
    return manifest, images


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    return {name: stored(tmp_path_factory, name) for name in SPECS}


def test_close_up_depth_is_not_constant_and_uses_the_full_span(batches):
    _, [img] = batches["close_up"]
    mask = img["mask"] > 0
    d8 = img["depth"][..., 0][mask]
    assert mask.mean() > 0.9  # the belly fills the frame
    assert d8.min() == FLOOR and d8.max() == 255, (d8.min(), d8.max())
    assert len(np.unique(d8)) > 100


@pytest.mark.parametrize("name", list(SPECS))
def test_no_subject_pixel_is_clipped_and_the_span_is_used(batches, name):
    manifest, images = batches[name]
    per_image = manifest["spec"]["render"]["depth_range"] == "image"
    lows, highs = [], []
    for img in images:
        mask = img["mask"] > 0
        mm = img["depth16"][mask].astype(float)
        d8 = img["depth"][..., 0][mask].astype(int)
        near, far = ((mm.min() / 1000, mm.max() / 1000) if per_image else
                     (manifest["depth_range"]["near"], manifest["depth_range"]["far"]))
        # metric depth (rounded to 1 mm) inside the range: nothing beyond far, nothing before near
        assert mm.max() <= far * 1000 + 0.5 and mm.min() >= near * 1000 - 0.5, (name, mm.min(), mm.max(), near, far)
        # the floor grey only where the surface is at the far end (within one grey level and 1 mm)
        level_mm = (far - near) * 1000 / ((1 - passes.DEPTH_FLOOR) * 255)
        at_floor = d8 == FLOOR
        assert (mm[at_floor] >= far * 1000 - level_mm - 1.0).all(), (name, mm[at_floor].min(), far)
        lows.append(d8.min())
        highs.append(d8.max())
    if per_image:
        assert set(lows) == {FLOOR} and set(highs) == {255}
    else:
        assert min(lows) == FLOOR and max(highs) == 255


def test_manifest_range_is_the_rendered_depths_range(batches):
    manifest, images = batches["demo"]
    mm = np.concatenate([img["depth16"][img["mask"] > 0] for img in images]).astype(float)
    assert abs(manifest["depth_range"]["near"] * 1000 - mm.min()) <= 0.5
    assert abs(manifest["depth_range"]["far"] * 1000 - mm.max()) <= 0.5


def test_shards_on_two_workers_give_the_depth_of_one(batches, tmp_path):
    """Two shards rendered in parallel by two Blender processes, merged as the client merges
    RunPod shards: the same 8-bit depth, byte for byte, as the batch rendered whole."""
    whole, whole_images = batches["steep_135mm"]
    store = LocalStorage(tmp_path)

    async def both():
        return await asyncio.gather(*(render.render_batch_async(SPECS["steep_135mm"], store, project="depth",
                                                                views=v) for v in ((0, 1), (1, 3))))

    parts = [p for p, _ in asyncio.run(both())]
    assert all(passes.DEPTH_F32 in e["files"] and "depth" not in e["files"] for p in parts for e in p["entries"])
    merged = render.build_batch_manifest(whole["spec"], "depth", whole["batch_id"],
                                         render.write_shard_depth(store, "depth", whole["batch_id"], parts),
                                         {}, {"estimate_usd": 0.0})
    render.commit_batch(store, merged)
    assert merged["depth_range"] == whole["depth_range"]
    assert [e["files"]["depth"] for e in merged["entries"]] == [e["files"]["depth"] for e in whole["entries"]]
    assert not any("depth_f32" in k for k in store.list(batch_prefix("depth", whole["batch_id"])))
    folder = tmp_path / batch_prefix("depth", whole["batch_id"])
    for e, img in zip(merged["entries"], whole_images):
        assert (imageio.read_png(str(folder / e["files"]["depth"]["key"])) == img["depth"]).all()
