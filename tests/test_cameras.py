import numpy as np
import pytest

from pose_factory.render import cameras

ORBIT = {"type": "orbit", "views": 4, "elevation": 10.0, "start_azimuth": 0.0, "distance": "auto",
         "focal_length": 50.0, "orthographic": False, "ortho_scale": "auto", "roll": 0.0,
         "sensor_width": 36.0, "margin": 0.08}


def body_points(rng):
    return rng.uniform([-0.8, -0.3, 0.0], [0.8, 0.3, 1.8], (500, 3))


def test_rotation_is_orthonormal_and_looks_at_target():
    r = cameras.look_at_rotation([3, -2, 1], [0, 0, 1], 15)
    assert np.allclose(r.T @ r, np.eye(3)) and np.isclose(np.linalg.det(r), 1)
    forward = -r[:, 2]
    assert np.allclose(forward, np.array([-3, 2, 0]) / np.sqrt(13))


@pytest.mark.parametrize("ortho", [False, True])
@pytest.mark.parametrize("size", [(512, 512), (768, 512), (512, 768)])
def test_auto_framing_keeps_everything_in_frame_and_is_tight(ortho, size):
    rng = np.random.default_rng(1)
    pts = body_points(rng)
    spec = dict(ORBIT, orthographic=ortho, roll=20.0)
    cams = cameras.orbit(spec, *size, pts)
    assert len(cams) == 4
    w, h = size
    extents = []
    for cam in cams:
        xy, depth = cameras.project(cam, pts)
        assert cameras.in_frame(cam, xy, depth).all()
        assert (xy[:, 0] >= 0.08 * w - 0.51).all() and (xy[:, 0] <= 0.92 * w).all()
        extents.append(min((xy[:, 0].min() - 0.08 * w + 0.5), (0.92 * w - 0.5 - xy[:, 0].max()),
                           (xy[:, 1].min() - 0.08 * h + 0.5), (0.92 * h - 0.5 - xy[:, 1].max())))
    # tight: in the view that decided the distance, some point touches the margin
    assert min(extents) < 1.0


def test_orbit_azimuths_go_round_the_subject():
    cams = cameras.orbit(dict(ORBIT, views=4, elevation=0.0), 256, 256, body_points(np.random.default_rng(2)))
    locs = np.array([c["location"] for c in cams])
    centre = locs[:, :2].mean(0)
    assert locs[0][1] < centre[1] and abs(locs[0][0] - centre[0]) < 1e-9  # front: the subject faces -Y
    assert locs[1][0] > centre[0]  # azimuth 90: the subject's left (+X)
    assert np.allclose(np.linalg.norm(locs[:, :2] - locs[:, :2].mean(0), axis=1), cams[0]["distance"], atol=1e-6)


def test_projection_round_trip_through_world_to_camera():
    cam = cameras.explicit([{"location": [2, -3, 1.5], "look_at": [0, 0, 1], "roll": 10.0, "focal_length": 35.0,
                             "orthographic": False, "ortho_scale": 2.0, "shift": [0.1, -0.05],
                             "sensor_width": 36.0}], 640, 480)[0]
    p = np.array([[0.2, 0.1, 1.2]])
    xy, depth = cameras.project(cam, p)
    m = np.array(cam["world_to_camera"])
    c = m @ np.append(p[0], 1)
    k = cam["intrinsics"]
    assert np.isclose(depth[0], -c[2])
    assert np.allclose(xy[0], [k["cx"] + k["fx"] * c[0] / -c[2], k["cy"] - k["fy"] * c[1] / -c[2]])


def test_shift_moves_the_principal_point_by_image_widths():
    base = {"location": [0, -5, 1], "look_at": [0, 0, 1], "roll": 0.0, "focal_length": 50.0,
            "orthographic": False, "ortho_scale": 2.0, "sensor_width": 36.0}
    a = cameras.explicit([dict(base, shift=[0.0, 0.0])], 400, 300)[0]["intrinsics"]
    b = cameras.explicit([dict(base, shift=[0.1, 0.1])], 400, 300)[0]["intrinsics"]
    assert np.isclose(a["cx"] - b["cx"], 40) and np.isclose(b["cy"] - a["cy"], 40)
