"""Images → mesh: the mannequin (a known shape) rendered from the 4 and 8 canonical views,
reconstructed by the visual hull, compared with the mannequin itself by voxel IoU (trimesh's
voxelizer on both); its exports re-imported by Blender's own importers; bad view sets refused."""
import json
import struct

import numpy as np
import pytest

from pose_factory import loading, render
from pose_factory.errors import SpecError
from pose_factory.mesh import backends, inputs, meshdata, metrics, reconstruct, views
from pose_factory.storage import LocalStorage, batch_prefix

PITCH = 0.01  # metres: the IoU's voxels


@pytest.fixture(scope="module")
def mannequin_views(tmp_path_factory):
    """{n: (manifest, shaded images, masks)} of the mannequin in the A-pose from the canonical rig."""
    storage = LocalStorage(tmp_path_factory.mktemp("views"))
    out = {}
    for n in (4, 8):
        spec = {"render": {"width": 256, "height": 256, "passes": ["seg", "shaded"]}, "cameras": views.rig(n),
                "subjects": [{"poses": ["a_pose"]}]}
        m, _ = render.render_batch(spec, storage, project="views")
        folder = storage.local_path(batch_prefix("views", m["batch_id"]))
        entries = loading.select_entries(m)
        out[n] = (m, loading._decode(folder, m, entries, "shaded", "rgb"),
                  loading._decode(folder, m, entries, "mask", "gray") > 127)
    return out


@pytest.fixture(scope="module")
def truth(mannequin_views):
    """The mannequin's own occupancy: the union of its parts' filled voxels."""
    pytest.importorskip("trimesh")
    return metrics.mannequin_occupancy(mannequin_views[8][0]["spec"]["subjects"][0]["poses"][0], PITCH)


@pytest.fixture(scope="module")
def hulls(mannequin_views, tmp_path_factory):
    """{n: (manifest, storage)}: the reconstruct job on the rendered views, masks made from the
    neutral background, every export format."""
    storage = LocalStorage(tmp_path_factory.mktemp("assets"))
    out = {}
    for n, (m, images, _masks) in mannequin_views.items():
        spec = {"cameras": m["views"], "formats": ["glb", "obj", "fbx"], "post": {"smooth": 10, "target_faces": 20000}}
        states = []
        manifest, made = reconstruct.reconstruct(list(images), None, spec, storage, project="assets",
                                                 on_progress=lambda e: states.append(e["state"]))
        assert made
        out[n] = (manifest, storage, states)
    return out


@pytest.mark.blender
def test_background_masks_match_the_rendered_masks(mannequin_views):
    _m, images, masks = mannequin_views[8]
    for img, mask in zip(images, masks):
        made = inputs.background_mask(img)
        # the shaded reference's edges are anti-aliased into the background: a 1-pixel rim differs
        assert (made & mask).sum() / (made | mask).sum() > 0.9


@pytest.mark.blender
def test_visual_hull_iou_with_the_mannequin(hulls, truth, capsys):
    iou = {}
    for n, (manifest, storage, _states) in hulls.items():
        path = storage.local_path(batch_prefix("assets", manifest["batch_id"]) + reconstruct.asset_key(manifest, "glb"))
        v, f = meshdata.load_file(path)  # the stored GLB, back in our Z-up frame
        rec = metrics.occupancy(v, f, PITCH)
        iou[n] = metrics.iou(rec, truth)
        # a visual hull holds the object, up to the masks' anti-aliased rim, smoothing and the voxels
        assert len(truth - rec) / len(truth) < 0.15
    with capsys.disabled():
        print(f"\nvisual hull voxel IoU with the mannequin: 4 views {iou[4]:.3f}, 8 views {iou[8]:.3f}")
    assert iou[8] >= 0.7
    assert iou[8] > iou[4]


@pytest.mark.blender
def test_job_states_follow_the_founding_pipeline(hulls):
    states = hulls[8][2]
    order = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    assert order == ["generating_images", "reconstructing_3d", "post_processing", "completed"]


@pytest.mark.blender
def test_same_views_same_batch_not_made_again(hulls, mannequin_views):
    manifest, storage, _ = hulls[8]
    m, images, _ = mannequin_views[8]
    spec = {"cameras": m["views"], "formats": ["glb", "obj", "fbx"], "post": {"smooth": 10, "target_faces": 20000}}
    again, made = reconstruct.reconstruct(list(images), None, spec, storage, project="assets")
    assert not made and again["batch_id"] == manifest["batch_id"]


@pytest.mark.blender
def test_exports_reimport_in_blender_with_the_same_face_count(hulls, blender, tmp_path):
    manifest, storage, _ = hulls[8]
    prefix = batch_prefix("assets", manifest["batch_id"])
    files = [storage.local_path(prefix + reconstruct.asset_key(manifest, fmt)) for fmt in ("glb", "obj", "fbx")]
    out = tmp_path / "counts.json"
    blender("reimport_mesh.py", out, *files)
    counts = json.loads(out.read_text())
    assert manifest["asset"]["faces"] == 20000
    for f in files:
        c = counts[f.name]
        assert c["polygons"] == manifest["asset"]["faces"] and c["triangles"], (f.name, c)
        assert c["uv_layers"] >= 1, f"{f.name} lost its UVs"
    # the GLB's own JSON chunk: UVs, a clay material and no placeholder texture for a viewer to load
    data = files[0].read_bytes()
    gltf = json.loads(data[20:20 + struct.unpack("<I", data[12:16])[0]])
    assert "TEXCOORD_0" in gltf["meshes"][0]["primitives"][0]["attributes"]
    assert not gltf.get("images") and not gltf.get("textures"), gltf.get("images")
    assert "baseColorTexture" not in gltf["materials"][0]["pbrMetallicRoughness"]


@pytest.mark.blender
def test_wrong_view_count_and_empty_masks_are_refused(mannequin_views, tmp_path):
    m, images, masks = mannequin_views[8]
    storage = LocalStorage(tmp_path)
    with pytest.raises(SpecError, match=r"images: got 3 views, allowed: 4 or 8"):
        reconstruct.reconstruct(list(images[:3]), None, {}, storage)
    with pytest.raises(SpecError, match=r"got 7 views for 8 cameras"):
        reconstruct.reconstruct(list(images[:7]), None, {"cameras": m["views"]}, storage)
    empty = list(masks)
    empty[2] = np.zeros_like(empty[2])
    with pytest.raises(SpecError, match=r"masks\[2\]: empty"):
        reconstruct.reconstruct(list(images), empty, {"cameras": m["views"]}, storage)
    blank = [np.full_like(images[0], 200)] + list(images[1:])  # a view with nothing on its background
    with pytest.raises(SpecError, match=r"masks\[0\]: empty"):
        reconstruct.reconstruct(blank, None, {"cameras": m["views"]}, storage)


def test_unknown_backend_lists_the_installed_ones():
    with pytest.raises(SpecError, match=r"backend: unknown backend 'triposr', allowed: one of the installed backends: "
                                        r"visual_hull"):
        backends.get("triposr")
    assert "visual_hull" in backends.installed()
