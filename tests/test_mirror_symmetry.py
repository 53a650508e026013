"""A mirrored pose seen from the mirrored camera gives the horizontally flipped image, pixel for
pixel (issue 8): the mannequin, its triangles and the renderer's sampling are mirror-symmetric."""
import json

import numpy as np
import pytest

from pose_factory import imageio, render, spec as spec_mod
from pose_factory.render import cameras, mannequin as mq, passes, poses

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
    return spec, result["cameras"][0], frames


# --- an exact (float64) ray cast through our camera model, independent of Cycles ----------------
TIE_PX = 1e-3         # rays moved this far (pixels) from the centre: Cycles' float32 rays err < 5e-4 px
DEPTH_TIE_M = 1e-5    # two parts' surfaces this close along a pixel's ray: which is nearer is a tie
GRAZE_M = 1e-4        # a hit whose distance moves by more than this when the ray moves TIE_PX: grazing


def pixel_ray(cam, x, y):
    k, rot = cam["intrinsics"], np.asarray(cam["rotation"], float)
    d = rot @ np.array([(x - k["cx"]) / k["fx"], -(y - k["cy"]) / k["fy"], -1.0])
    return np.asarray(cam["location"], float), d / np.linalg.norm(d)


def exact_hits(origin, d, tri_verts):
    """Möller–Trumbore in float64 against every triangle: (distance, triangle) of each hit, nearest first."""
    e1, e2 = tri_verts[:, 1] - tri_verts[:, 0], tri_verts[:, 2] - tri_verts[:, 0]
    pv = np.cross(d, e2)
    det = (e1 * pv).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tv = origin - tri_verts[:, 0]
        u = (tv * pv).sum(1) / det
        q = np.cross(tv, e1)
        v = (q @ d) / det
        t = (e2 * q).sum(1) / det
    idx = np.nonzero((u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0))[0]
    return sorted(zip(t[idx], idx))


def edge_distance_px(xy, tris, x, y):
    """The distance (pixels) from (x, y) to the nearest projected edge of the mesh."""
    a = xy[np.concatenate([tris[:, 0], tris[:, 1], tris[:, 2]])]
    b = xy[np.concatenate([tris[:, 1], tris[:, 2], tris[:, 0]])]
    ab, p = b - a, np.array([x, y], float)
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-300), 0, 1)
    return float(np.linalg.norm(a + t[:, None] * ab - p, axis=1).min())


def is_tie(cam, verts, tris, part_of, x, y):
    """Whether pixel (x, y) is one that a float32 ray test may decide either way, by an exact cast:
    its centre lies within TIE_PX of a mesh edge (a silhouette); the two nearest parts along its
    ray are within DEPTH_TIE_M (a crease); or moving the ray TIE_PX in any of 8 directions changes
    what it meets (hit or miss, the part) or moves the hit by more than GRAZE_M (a grazing ray
    through a thin sliver of surface, whose depth and normal change fast)."""
    xy, _ = cameras.project(cam, verts)
    if edge_distance_px(xy, tris, x, y) <= TIE_PX:
        return True
    tri_verts = verts[tris]

    def first(px, py):
        hits = exact_hits(*pixel_ray(cam, px, py), tri_verts)
        return hits, (hits[0][0], part_of[hits[0][1]]) if hits else None

    hits, centre = first(x, y)
    other = [t for t, i in hits if part_of[i] != centre[1]] if hits else []
    if other and other[0] - centre[0] <= DEPTH_TIE_M:
        return True
    for a in np.arange(8) * np.pi / 4:
        _, moved = first(x + TIE_PX * np.cos(a), y + TIE_PX * np.sin(a))
        if (moved is None) != (centre is None) or (moved and (moved[1] != centre[1]
                                                              or abs(moved[0] - centre[0]) > GRAZE_M)):
            return True
    return False


@pytest.mark.blender
def test_blender_poses_mirrored_poses_into_exactly_mirrored_meshes(blender, tmp_path):
    """The deformed mesh Blender renders for a mirrored pose is the exact mirror image (x → -x) of
    the original's, vertex for vertex: no rounding of ours makes the two scenes differ."""
    blender("mirror_pose_vertices.py", tmp_path / "mirror.json", *PRESETS)
    rows = json.loads((tmp_path / "mirror.json").read_text())
    assert [r["preset"] for r in rows] == PRESETS and all(r["vertices"] > 9000 for r in rows), rows
    # float32 steps near 1 m are 6e-8 m: the two meshes agree far below one step (6e-17 m at most)
    assert all(r["max_distance_m"] <= 1e-12 for r in rows), rows


@pytest.mark.blender
def test_mirrored_pose_from_mirrored_camera_is_the_flipped_image(tmp_path):
    """Pixel for pixel, except where the image itself is a tie. The meshes are exact mirror images
    (the test above) and every ray goes through its pixel centre, but Cycles computes each ray and
    its triangle test in float32, and the mirrored ray is computed from other numbers, so it is the
    mirror image only to ~1e-7. A pixel whose centre lies within 1e-3 px of a mesh edge (a
    silhouette), or whose ray meets two parts within 1e-5 m of each other (a crease), can fall
    either way: such pixels may differ (1 to 4 per image here, each proven a tie by an exact
    float64 ray cast); every other pixel must be equal. Before the symmetric triangles: 29 mask,
    116 part and 823 depth pixels differed, and normals on a fifth of the subject."""
    spec, cam_o, original = render_frames(tmp_path, CAMERA, False)
    _, cam_m, mirrored = render_frames(tmp_path, MIRRORED, True)
    body = mq.build(spec["subjects"][0]["height"], spec["subjects"][0]["build"])
    tris = body.all_triangles()
    part_of = np.concatenate([np.full(len(p.triangles()[0]), mq.PART_LABEL[p.name]) for p in body.parts])
    ties_seen = 0
    for k, (preset, a, b) in enumerate(zip(PRESETS, original, mirrored)):
        flip = {key: v[:, ::-1] for key, v in a.items()}
        assert np.count_nonzero(flip["mask"]) > 0.1 * W * H
        swapped = LR_SWAP[flip["parts"]]
        verts = {c: mq.posed_vertices(body, poses.pose_body(body, spec_mod.normalize_spec({
            "schema_version": "1.0", "kind": "pose_batch", "project": "mirror",
            "subjects": [{"type": "mannequin", "poses": [{"preset": preset, "mirror": m}]}]})["subjects"][0]["poses"][0]))
            for c, m in (("o", False), ("m", True))}
        both = (b["mask"] > 0) & (flip["mask"] > 0)
        err_mm = np.abs(b["metric"] - flip["metric"]) * 1000
        checks = {"mask": b["mask"] != flip["mask"], "seg": (b["seg"] != flip["seg"]).any(-1),
                  "parts": b["parts"] != swapped, "depth > 0.5 mm": both & (err_mm > 0.5)}
        for conv in passes.NORMAL_CONVENTIONS:
            n_a, n_b = flip[passes.NORMAL_DIRS[conv]].astype(int), b[passes.NORMAL_DIRS[conv]].astype(int)
            n_a[..., 0] = 255 - n_a[..., 0]  # the x component flipped
            checks[f"{conv} normal > 1 level"] = both & (np.abs(n_b - n_a).max(-1) > 1)
        differ = np.logical_or.reduce(list(checks.values()))
        for y, x in np.argwhere(differ):  # the same tie in both scenes: proven on each
            what = [k for k, bad in checks.items() if bad[y, x]]
            assert is_tie(cam_o, verts["o"], tris, part_of, W - 1 - x, y), (preset, what, "not a tie", (y, x))
            assert is_tie(cam_m, verts["m"], tris, part_of, x, y), (preset, what, "not a tie in the mirror", (y, x))
        ties_seen += int(differ.sum())
        # the rule is no blanket: on 40 random subject pixels of each image, few are ties
        rng = np.random.default_rng(k)
        sample = rng.permutation(np.argwhere(b["mask"] > 0))[:40]
        ordinary = sum(not is_tie(cam_m, verts["m"], tris, part_of, x, y) for y, x in sample)
        assert ordinary >= 36, (preset, ordinary)
    print("tie pixels over", len(PRESETS), "images:", ties_seen)
