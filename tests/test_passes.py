import numpy as np

from pose_factory.render import passes


def test_depth_near_is_bright_far_is_floor_background_black():
    depth = np.array([[1.0, 2.0, 3.0, 9.0]])
    mask = np.array([[True, True, True, False]])
    img = passes.depth_to_u8(depth, mask, 1.0, 3.0)[..., 0]
    assert img[0, 0] == 255 and img[0, 0] > img[0, 1] > img[0, 2]
    assert img[0, 2] == round(passes.DEPTH_FLOOR * 255) and img[0, 3] == 0


def test_batch_range_is_shared():
    r = passes.merge_ranges([(2.0, 3.0), None, (1.5, 2.5)])
    assert r == (1.5, 3.0)


def test_metric_depth_in_millimetres():
    d = passes.depth_to_mm16(np.array([[1.2345, 70.0, 5.0]]), np.array([[True, True, False]]))
    assert d.dtype == np.uint16 and d.tolist() == [[1234 if round(1234.5) == 1234 else 1235, 65535, 0]]


def test_normal_round_trip_and_background():
    rng = np.random.default_rng(0)
    n = rng.normal(size=(8, 8, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    mask = np.ones((8, 8), bool)
    mask[0, 0] = False
    for conv in passes.NORMAL_CONVENTIONS:
        rgb = passes.normals_to_rgb(n, mask, conv)
        back = passes.rgb_to_normals(rgb, conv)
        assert np.abs(back[mask] - n[mask]).max() < 1.0 / 255 * 2 + 1e-9
        assert tuple(rgb[0, 0]) == (128, 128, 255)
    assert tuple(passes.normals_to_rgb(n, mask, background="black")[0, 0]) == (0, 0, 0)


def test_world_to_camera_normals_rotates():
    rot = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)  # camera axes as columns
    n = passes.world_to_camera_normals(np.array([[0.0, 0.0, 1.0]]), rot)
    assert np.allclose(n, [[0, 1, 0]])  # world up is the camera's second axis


def test_seg_uses_ade20k_person_colour():
    mask = np.array([[True, False]])
    seg = passes.seg_image(mask)
    assert tuple(seg[0, 0]) == (150, 5, 61) and tuple(seg[0, 1]) == (0, 0, 0)


def test_shaded_from_combined_composites_encodes_and_smooths_only_edges():
    rgba = np.zeros((6, 8, 4), np.float32)
    rgba[:, 4:] = (0.5, 0.5, 0.5, 1.0)  # a grey subject on the right half
    labels = np.zeros((6, 8), np.uint8)
    labels[:, 4:] = 3
    img = passes.shaded_from_combined(rgba, labels)
    bg = passes.SRGB_LUT[np.rint(np.array(passes.SHADED_BACKGROUND) * 4095).astype(int)]
    assert (img[:, 0] == bg).all()  # transparent film → the background colour
    assert (img[:, 7] == passes.SRGB_LUT[round(0.5 * 4095)]).all()  # Standard transform: 0.5 → 188
    assert passes.SRGB_LUT[round(0.5 * 4095)] == 188
    edge = img[:, 3:5].astype(int)
    assert (edge[:, 0] > bg[0]).all() and (edge[:, 1] < 188).all()  # softened across the edge only
