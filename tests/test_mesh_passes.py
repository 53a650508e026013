"""Exact passes of any mesh: a sphere mesh written as a GLB file, rendered through the mesh-pass job
into a batch and read back with the mannequin's loaders, against the analytic sphere."""
import types

import numpy as np
import pytest

from pose_factory import loading
from pose_factory.render import passes
from pose_factory.errors import SpecError
from pose_factory.mesh import meshdata
from pose_factory.mesh import passes as mesh_passes
from pose_factory.storage import LocalStorage, batch_prefix

CENTRE_GLTF = np.array([0.3, 0.5, -0.2])  # Y-up, as the file stores it
CENTRE = np.array([0.3, 0.2, 0.5])  # Z-up, our world: (x, -z, y)
W, H = 256, 192


def camera(az=37.0, el=25.0, roll=10.0, dist=4.0):
    a, e = np.radians(az), np.radians(el)
    loc = CENTRE + dist * np.array([np.sin(a) * np.cos(e), -np.cos(a) * np.cos(e), np.sin(e)])
    return {"location": loc.round(4).tolist(), "look_at": CENTRE.tolist(), "roll": roll}


def test_spec_errors_name_the_field():
    with pytest.raises(SpecError, match="render.passes"):
        mesh_passes.normalize({"render": {"passes": ["openpose"]}})
    with pytest.raises(SpecError, match="mesh.shading"):
        mesh_passes.normalize({"mesh": {"shading": "toon"}})
    with pytest.raises(SpecError, match="face indices"):
        meshdata.check(np.zeros((3, 3)), np.array([[0, 1, 3]]))


@pytest.fixture(scope="module")
def sphere_batch(tmp_path_factory):
    trimesh = pytest.importorskip("trimesh")
    tmp = tmp_path_factory.mktemp("mesh_sphere")
    glb = tmp / "sphere.glb"
    m = trimesh.creation.uv_sphere(radius=1.0, count=[64, 128])
    m.apply_translation(CENTRE_GLTF)
    m.export(glb)
    storage = LocalStorage(tmp / "store")
    spec = {"render": {"width": W, "height": H}, "cameras": {"type": "list", "cameras": [camera()]}}
    manifest, rendered = mesh_passes.render_mesh_passes(glb, spec, storage, project="meshes")  # read by Blender's side
    again, rendered_again = mesh_passes.render_mesh_passes(glb, spec, storage, project="meshes")
    assert rendered and not rendered_again and again["batch_id"] == manifest["batch_id"]
    # the same sphere as ComfyUI core's MESH (Y-up torch tensors, batch of 1): the same pixels
    torch = pytest.importorskip("torch")
    core_mesh = types.SimpleNamespace(vertices=torch.tensor(m.vertices[None], dtype=torch.float32),
                                      faces=torch.tensor(m.faces[None], dtype=torch.int64),
                                      vertex_counts=None, face_counts=None)
    from_core, _ = mesh_passes.render_mesh_passes(meshdata.from_comfy_mesh(core_mesh), spec, storage, project="meshes")
    assert from_core["batch_id"] != manifest["batch_id"]
    folder = storage.local_path(batch_prefix("meshes", manifest["batch_id"]))
    entries = loading.select_entries(manifest)
    out = {conv: loading.load_depth_normal(folder, manifest, entries, "image", conv) for conv in passes.NORMAL_CONVENTIONS}
    core_folder = storage.local_path(batch_prefix("meshes", from_core["batch_id"]))
    core_mask = loading.load_depth_normal(core_folder, from_core, loading.select_entries(from_core))["subject"][0]
    assert (core_mask == out["controlnet"]["subject"][0]).mean() > 0.999  # float32 tensors: a rim pixel may differ
    mm = loading._decode(folder, manifest, entries, "depth16", "gray")[0]
    cam = manifest["views"][0]
    r, c, k = np.array(cam["rotation"]), np.array(cam["location"]), cam["intrinsics"]
    ys, xs = np.mgrid[0:H, 0:W]
    ray = np.stack([(xs - k["cx"]) / k["fx"], -(ys - k["cy"]) / k["fy"], -np.ones((H, W))], -1) @ r.T
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    oc = c - CENTRE
    b = ray @ oc
    disc = b * b - (oc @ oc - 1.0)
    t = -b - np.sqrt(np.maximum(disc, 0))
    point = c + ray * t[..., None]
    return {"out": out, "mm": mm, "hit": disc > 0, "point": point, "planar": (point - c) @ (-r[:, 2]),
            "rotation": r, "manifest": manifest}


@pytest.mark.blender
def test_sphere_mesh_mask_is_the_analytic_sphere(sphere_batch):
    mask = sphere_batch["out"]["controlnet"]["subject"][0] > 0.5
    assert mask.sum() > 1000
    assert (mask == sphere_batch["hit"]).mean() > 0.998  # a 128-segment sphere differs only at its rim


@pytest.mark.blender
def test_sphere_mesh_depth_is_metric(sphere_batch):
    m = (sphere_batch["mm"] > 0) & sphere_batch["hit"]
    err = np.abs(sphere_batch["mm"][m] / 1000.0 - sphere_batch["planar"][m])
    assert np.median(err) < 0.002 and np.percentile(err, 99) < 0.01


@pytest.mark.blender
@pytest.mark.parametrize("convention", passes.NORMAL_CONVENTIONS)
def test_sphere_mesh_normals_within_3_degrees(sphere_batch, convention):
    out = sphere_batch["out"][convention]
    m = (out["subject"][0] > 0.5) & sphere_batch["hit"]
    n = passes.rgb_to_normals(np.rint(out["normal"][0] * 255) if out["normal"].dtype != np.uint8 else out["normal"][0],
                              convention)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    truth = (sphere_batch["point"] - CENTRE) @ sphere_batch["rotation"]
    angle = np.degrees(np.arccos(np.clip((n * truth).sum(-1), -1, 1)))
    assert np.percentile(angle[m], 99.5) < 3.0


@pytest.mark.blender
def test_mesh_batch_lists_the_mesh_and_the_mannequin_passes(sphere_batch):
    files = sphere_batch["manifest"]["entries"][0]["files"]
    assert {"depth", "depth16", "normal", "normal_opengl", "normal_directx", "seg", "mask", "parts", "shaded",
            "mesh"} <= set(files)
    seg = sphere_batch["out"]["controlnet"]["seg"][0]
    assert tuple(seg[H // 2, W // 2]) == passes.ADE20K_PERSON
