"""Oracles from outside our code: Blender's own armature and renderer, and analytic geometry."""
import json

import numpy as np
import pytest

from pose_factory.render import passes

pytestmark = pytest.mark.blender


def marker_errors(rows) -> list:
    """tests/blender/markers.py's rows: each marker seen, and its distance (px) from our keypoint."""
    assert len(rows) >= 3 * 25
    errors = []
    for r in rows:
        assert r["found"] is not None, f"marker {r['marker']} not seen in {r['config']}"
        errors.append(np.hypot(*(np.subtract(r["found"], r["ours"]))))
    return errors


def test_markers_at_joints_match_projected_keypoints(blender, tmp_path):
    out = tmp_path / "markers.json"
    blender("markers.py", out, tmp_path / "m.png")
    errors = marker_errors(json.loads(out.read_text()))
    assert max(errors) <= 0.5, f"worst keypoint error {max(errors):.3f} px"


@pytest.fixture(scope="module")
def sphere(blender, tmp_path_factory):
    out = tmp_path_factory.mktemp("sphere") / "sphere"
    blender("sphere_normals.py", out)
    d = dict(np.load(str(out) + ".npz"))
    # analytic truth: cast each pixel's ray at the unit sphere
    h, w = d["mask"].shape
    r, c = d["rotation"], d["location"]
    ys, xs = np.mgrid[0:h, 0:w]
    ray = np.stack([(xs - d["cx"]) / d["fx"], -(ys - d["cy"]) / d["fx"], -np.ones((h, w))], -1) @ r.T
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    b = ray @ c
    disc = b * b - (c @ c - 1.0)
    t = -b - np.sqrt(np.maximum(disc, 0))
    d["hit"] = disc > 0
    d["point"] = c + ray * t[..., None]
    d["planar"] = (d["point"] - c) @ (-r[:, 2])
    return d


def test_sphere_mask_is_exactly_where_the_sphere_is(sphere):
    assert sphere["mask"].sum() > 1000
    assert (sphere["mask"] == sphere["hit"]).mean() == 1.0


def test_sphere_depth_is_metric_view_depth(sphere):
    m = sphere["mask"] & sphere["hit"]
    err = np.abs(sphere["depth"][m] - sphere["planar"][m])
    assert np.median(err) < 0.002 and np.percentile(err, 99) < 0.01  # faceting only at the rim


@pytest.mark.parametrize("convention", passes.NORMAL_CONVENTIONS)
def test_sphere_normals_within_3_degrees(sphere, convention):
    m = sphere["mask"] & sphere["hit"]
    n = passes.rgb_to_normals(sphere[f"rgb_{convention}"], convention)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    truth = sphere["point"] @ sphere["rotation"]  # the unit sphere's normal is its point
    angle = np.degrees(np.arccos(np.clip((n * truth).sum(-1), -1, 1)))
    assert angle[m].max() < 3.0


def test_normal_conventions_mean_what_they_say(sphere):
    """ControlNet: red = left, green = up, blue = front; OpenGL: red = right; DirectX: green down."""
    m = sphere["mask"]
    ys, xs = np.nonzero(m)
    left, right = (ys[xs.argmin()], xs.min() + 2), (ys[xs.argmax()], xs.max() - 2)
    top, bottom = (ys.min() + 2, xs[ys.argmin()]), (ys.max() - 2, xs[ys.argmax()])
    cn, gl, dx = (sphere[f"rgb_{c}"].astype(int) for c in ("controlnet", "opengl", "directx"))
    assert cn[left][0] > 200 and cn[right][0] < 55
    assert gl[left][0] < 55 and gl[right][0] > 200
    assert cn[top][1] > 200 and gl[top][1] > 200 and dx[top][1] < 55
    centre = (int(ys.mean()), int(xs.mean()))
    assert cn[centre][2] > 240
    assert tuple(cn[0, 0]) == (128, 128, 255)  # background: a surface facing the camera
