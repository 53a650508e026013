"""A BVH clip's feet stand on the floor (issue 21, point 1): a mocap-like walk, its hips about
0.96 m above its floor, written by Blender's own BVH exporter (tests/blender/make_bvh_walk.py), is
retargeted and rendered with a listed camera between two presets and beside a prop.

The oracle is the rendered parts pass (Blender's own labels of its deformed meshes, read at each
pixel centre), seen by an orthographic camera looking horizontally from the side: there every image
row is one height, z = CAMERA_Z + ((H - 1) / 2 - row) / (pixels per metre), whatever the distance,
so the lowest pixel labelled foot_l or foot_r gives the feet's lowest point to half a pixel (1.6 mm
here) without our keypoint or camera code. Two things in the same images check the oracle itself:
the presets (grounded: their lowest vertex on z = 0) and a box standing on z = 0."""
import numpy as np
import pytest

from pose_factory import render
from pose_factory.imageio import read_png
from pose_factory.mesh import props
from pose_factory.motion import clip as clip_mod
from pose_factory.render import mannequin as mq
from pose_factory.storage import LocalStorage, batch_prefix

pytestmark = pytest.mark.blender

SIZE = 768
ORTHO = 2.4  # metres across the image
PPM = SIZE / ORTHO  # pixels per metre (an orthographic camera fits its scale to the width)
CAMERA_Z = 0.4
CENTRE_Y = -0.55  # the walk goes from y = 0 towards -Y
FEET = (mq.PART_LABEL["foot_l"], mq.PART_LABEL["foot_r"])
# a 0.2 m box standing on the floor behind the walk's start
BOX_V = np.array([[x, y, z] for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (0.0, 0.2)])
BOX_F = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def lowest_point(labels, wanted) -> float:
    """The height (m) of the lowest point of the wanted labels: the bottom row holding one, at
    its pixel centre, less half a pixel."""
    rows = np.nonzero(np.isin(labels, wanted).any(axis=1))[0]
    if rows.size == 0:
        return float("nan")  # not in the image (a clip a metre up shows its feet; more is out)
    return CAMERA_Z + ((SIZE - 1) / 2 - rows.max()) / PPM - 0.5 / PPM


@pytest.fixture(scope="module")
def rendered(blender, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("floor")
    walk = tmp / "walk.bvh"
    blender("make_bvh_walk.py", walk, 24)
    hip_height = float(walk.read_text().split("Frame Time:")[1].split()[3])  # frame 0's Zposition
    clip, report = clip_mod.load_clip(walk, height=1.75, step=2)
    storage = LocalStorage(tmp / "store")
    raw = {"render": {"width": SIZE, "height": SIZE, "passes": ["seg"]},
           "cameras": {"type": "list", "cameras": [{"location": [3.0, CENTRE_Y, CAMERA_Z],
                                                    "look_at": [0.0, CENTRE_Y, CAMERA_Z],
                                                    "orthographic": True, "ortho_scale": ORTHO}]},
           "subjects": [{"height": 1.75, "poses": ["rest", *clip, "walk_left_step"]}],
           "props": [{"mesh": {"vertices": BOX_V.tolist(), "faces": BOX_F.tolist()}, "location": [-0.3, 0.45, 0.0]}]}
    manifest, _ = render.render_batch(props.resolve(raw, storage, "floor"), storage, project="floor")
    folder = storage.local_path(batch_prefix("floor", manifest["batch_id"]))
    entries = sorted(manifest["entries"], key=lambda e: e["frame"])
    parts = [read_png(str(folder / e["files"]["parts"]["key"])) for e in entries]
    parts = [p[..., 0] if p.ndim == 3 else p for p in parts]
    feet = np.array([lowest_point(p, FEET) for p in parts])
    box = np.array([lowest_point(p, [props.label(0)]) for p in parts])
    return {"hip_height": hip_height, "feet": feet, "box": box, "clip_frames": len(clip), "report": report}


def test_the_oracle_reads_the_floor_where_it_is(rendered):
    """The box's bottom and the grounded presets' feet read z = 0 within a pixel."""
    assert np.nanmax(np.abs(rendered["box"])) <= 1 / PPM, rendered["box"]
    assert abs(rendered["feet"][0]) <= 1 / PPM and abs(rendered["feet"][-1]) <= 1 / PPM, rendered["feet"]


def test_a_bvh_walk_stands_on_the_floor(rendered):
    """The clip's hips are 0.9-1.0 m above its floor (its absolute root height, as mocap writes it);
    its lowest foot point over the clip is on the floor within 1 cm, and no frame floats or sinks
    by more than the mannequin's foot differs from the clip's (its heel reaches below the ankle)."""
    assert 0.9 <= rendered["hip_height"] <= 1.0
    clip = rendered["feet"][1:-1]
    assert len(clip) == rendered["clip_frames"] == 12
    print("lowest foot point per clip frame (m):", np.round(clip, 4).tolist())
    assert not np.isnan(clip).any(), clip  # every frame's feet are in the image (the floor is in its middle)
    assert abs(clip.min()) <= 0.01, clip
    assert np.all(np.abs(clip) <= 0.05), clip


def test_the_floor_does_not_depend_on_the_clips_units(blender, tmp_path):
    """The same walk written in centimetres (its hips 96.7 units up) gives the same poses: the
    floor, the vertical and the root's scale are found in the clip's own units."""
    metres, centimetres = tmp_path / "walk_m.bvh", tmp_path / "walk_cm.bvh"
    blender("make_bvh_walk.py", metres, 12)
    blender("make_bvh_walk.py", centimetres, 12, 100)
    assert 90 <= float(centimetres.read_text().split("Frame Time:")[1].split()[3]) <= 100
    a, report = clip_mod.load_clip(metres, height=1.6)
    b, _ = clip_mod.load_clip(centimetres, height=1.6)
    np.testing.assert_allclose([e["offset"] for e in a], [e["offset"] for e in b], atol=2e-4)
    assert "the mannequin's feet touch z = 0" in report
