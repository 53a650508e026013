"""A mirrored pose seen from the mirrored camera gives the horizontally flipped image, pixel for
pixel (issue 8): the mannequin, its triangles and the renderer's sampling are mirror-symmetric."""
import json

import numpy as np
import pytest

from pose_factory import imageio, render, spec as spec_mod
from pose_factory.render import mannequin as mq, passes

PRESETS = ["waving", "fighting_stance", "walk_left_step"]
W, H = 200, 240
# a camera off every axis, rolled and shifted; its mirror image through the plane x = 0
CAMERA = {"location": [1.1, -1.9, 1.3], "look_at": [0.08, 0.0, 0.92], "roll": 8.0, "focal_length": 45,
          "shift": [0.04, -0.03]}
MIRRORED = {"location": [-1.1, -1.9, 1.3], "look_at": [-0.08, 0.0, 0.92], "roll": -8.0, "focal_length": 45,
            "shift": [-0.04, -0.03]}


def _mirror(p):
    return p.replace("_l", "_R").replace("_r", "_l").replace("_R", "_r")


LR_SWAP = np.arange(256, dtype=np.uint8)  # part label -> the label of its mirror part
for _name, _label in mq.PART_LABEL.items():
    LR_SWAP[_label] = mq.PART_LABEL[_mirror(_name)]


def test_every_triangle_has_its_mirror_image():
    body = mq.build()
    verts, _ = body.all_vertices()
    tris = body.all_triangles()
    assert len(tris) > 15000

    def keys(v):
        return {tuple(sorted(map(tuple, np.round(t, 6)))) for t in v[tris]}

    mirrored = verts * [-1, 1, 1]
    assert keys(verts) == keys(mirrored)


@pytest.mark.blender
def test_blender_renders_exactly_these_triangles(blender, tmp_path):
    blender("mesh_triangles.py", tmp_path / "tris.json")
    rows = json.loads((tmp_path / "tris.json").read_text())
    assert len(rows) == len(mq.PARTS) and all(r["same"] and r["materials"] for r in rows), rows


def render_frames(tmp_path, camera, mirror):
    spec = spec_mod.normalize_spec({
        "schema_version": "1.0", "kind": "pose_batch", "project": "mirror",
        "render": {"width": W, "height": H, "passes": ["keypoints", "depth", "normal", "seg"]},
        # two copies of the camera: rendering view 0 alone is a shard, which keeps its metric depth
        "cameras": {"type": "list", "cameras": [camera, camera]},
        "subjects": [{"type": "mannequin", "poses": [{"preset": p, "mirror": mirror} for p in PRESETS]}]})
    work = tmp_path / ("mirrored" if mirror else "original")
    work.mkdir()
    result = render.run_blender(spec, str(work), views=(0, 1))
    folder = result["files_dir"]
    frames = []
    for e in result["entries"]:
        f = {k: imageio.read_png(f"{folder}/{key}") for k, key in e["files"].items() if key.endswith(".png")}
        with np.load(f"{folder}/{e['files'][passes.DEPTH_F32]}") as z:
            f["metric"] = z["depth"]
        frames.append(f)
    return frames


def jumps(parts, normal, levels=20):
    """Pixels whose 3x3 neighbourhood holds another part (or the background) or a normal more than
    `levels` away: silhouettes, part boundaries and the creases where overlapping parts meet."""
    p = np.pad(parts, 1, mode="edge")
    n = np.pad(normal.astype(int), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = parts.shape
    out = np.zeros((h, w), bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= p[dy:dy + h, dx:dx + w] != parts
            out |= np.abs(n[dy:dy + h, dx:dx + w] - normal).max(-1) > levels
    return out


@pytest.mark.blender
def test_mirrored_pose_from_mirrored_camera_is_the_flipped_image(tmp_path):
    """Exact on every pixel where the surface is well-conditioned. Where a pixel centre lies on a
    jump (a silhouette, a part boundary, the crease of two overlapping parts) Cycles' float32 ray
    test can fall either way for the mirrored ray; a few such pixels per image may differ (1 to
    4 at 200x240; before the symmetric triangles: 29 mask, 116 part and 823 depth pixels, and
    normals on a fifth of the subject)."""
    original = render_frames(tmp_path, CAMERA, False)
    mirrored = render_frames(tmp_path, MIRRORED, True)
    for preset, a, b in zip(PRESETS, original, mirrored):
        flip = {k: v[:, ::-1] for k, v in a.items()}
        assert np.count_nonzero(flip["mask"]) > 0.1 * W * H
        swapped = LR_SWAP[flip["parts"]]
        unstable = jumps(swapped, flip["normal"]) | jumps(b["parts"], b["normal"])
        mask = (b["mask"] > 0) & (flip["mask"] > 0)
        err_mm = np.abs(b["metric"] - flip["metric"]) * 1000
        checks = {
            "mask": b["mask"] != flip["mask"], "seg": (b["seg"] != flip["seg"]).any(-1),
            "parts": b["parts"] != swapped, "depth > 0.5 mm": mask & (err_mm > 0.5),
        }
        for conv in passes.NORMAL_CONVENTIONS:
            n_a, n_b = flip[passes.NORMAL_DIRS[conv]].astype(int), b[passes.NORMAL_DIRS[conv]].astype(int)
            n_a[..., 0] = 255 - n_a[..., 0]  # the x component flipped
            checks[f"{conv} normal > 1 level"] = mask & (np.abs(n_b - n_a).max(-1) > 1)
        for what, bad in checks.items():
            assert not (bad & ~unstable).any(), (preset, what, "on a well-conditioned pixel", np.argwhere(bad & ~unstable)[:5])
            assert bad.sum() <= 6, (preset, what, bad.sum())
