"""Motion rendered: a walk made by the Pose Sequence (slerped in-betweens, root walking forward)
rendered in one Blender process for every (view, frame). Smoothness (no body joint jumps more
than MAX_STEP_PX between frames, left and right never swap), the frame order (the root moves
monotonically, so must the keypoints in frame-major order), a rig that follows the root, and one
depth range covering every frame."""
import json

import numpy as np
import pytest

from nodes.spec_nodes import parse_sequence
from pose_factory import loading, render
from pose_factory.storage import LocalStorage

pytestmark = pytest.mark.blender

SIZE = 256
# docs/motion.md: a smooth clip (a walk, 6 frames a step) moves no body joint more than 6% of the
# image side between two frames
MAX_STEP_PX = 0.06 * SIZE
WALK = parse_sequence("\n".join(["walk_left_step frames=6 ease=in_out", "walk_right_step frames=6 ease=in_out"] * 2
                                + ["walk_left_step"]), "walk_forward", 1.5)
BODY = list(range(14))  # nose .. left ankle: the joints every view has (eyes and ears may hide)


def spec(follow: bool) -> dict:
    return {"render": {"width": SIZE, "height": SIZE, "passes": ["keypoints", "depth"]},
            "cameras": {"views": 2, "start_azimuth": 20, "elevation": 10, **({"follow": True} if follow else {})},
            "subjects": [{"poses": WALK}]}


@pytest.fixture(scope="module", params=[False, True], ids=["fixed", "follow"])
def batch(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("walk")
    manifest, rendered = render.render_batch(spec(request.param), LocalStorage(root), project="walk")
    folder = root / "projects" / "walk" / "batches" / manifest["batch_id"]
    entries = loading.select_entries(manifest, order="frame_major")
    kps = loading.read_keypoints(folder, entries, manifest)
    n_views = len(manifest["views"])
    body = np.array([np.array(k["people"][0]["pose_keypoints_2d"]).reshape(-1, 3) for k in kps])
    return {"manifest": manifest, "folder": folder, "entries": entries, "follow": request.param,
            "body": body.reshape(len(WALK), n_views, -1, 3)}  # frame-major: (frames, views, 18, 3)


def test_one_blender_process_renders_every_view_and_frame(batch):
    assert batch["manifest"]["frames"] == len(WALK) == 25
    assert [(e["frame"], e["view"]) for e in batch["entries"]] == [(f, v) for f in range(25) for v in range(2)]


def test_no_joint_jumps_between_frames(batch):
    xy, seen = batch["body"][..., :2], batch["body"][..., 2] > 0
    both = seen[1:] & seen[:-1]
    step = np.linalg.norm(xy[1:] - xy[:-1], axis=-1)[..., BODY][both[..., BODY]]
    assert step.size > 0.8 * 24 * 2 * len(BODY)
    assert step.max() <= MAX_STEP_PX, step.max()


def test_left_and_right_never_swap(batch):
    """From 20 degrees off the front, the subject's right hip and shoulder are left of its left
    ones (image x) in every frame: a 2D estimator's classic flip never happens here."""
    b = batch["body"]
    for r, l in ((8, 11), (2, 5)):
        seen = (b[:, 0, r, 2] > 0) & (b[:, 0, l, 2] > 0)
        assert seen.sum() >= 20
        assert np.all(b[seen, 0, r, 0] < b[seen, 0, l, 0])


def test_frame_order_follows_the_clip(batch):
    """The root walks monotonically towards -Y: in frame-major order the neck's 3D position does,
    and with a fixed rig its image position moves one way too; a following rig keeps it still."""
    necks = np.array([f["joints"]["neck"] for f in batch["manifest"]["joints_3d"]])
    assert np.all(np.diff(necks[:, 1]) < 0)
    x = batch["body"][:, 0, 1, 0]  # view 0 (20 degrees to the subject's left), the neck's image x
    if batch["follow"]:
        assert np.ptp(x) < 0.03 * SIZE  # the root stays put; only the walk's sway is left
        shifts = [e.get("camera_shift") for e in batch["manifest"]["entries"] if e["view"] == 0]
        assert shifts[0] == [0.0, 0.0, 0.0] and shifts[-1][1] == pytest.approx(-1.5, abs=1e-3)
    else:
        assert np.all(np.diff(x) < 0) or np.all(np.diff(x) > 0)
        assert "camera_shift" not in batch["manifest"]["entries"][0]


def test_one_depth_range_covers_every_frame(batch):
    """One depth range for the batch, from every frame's rendered depth: the nearest pixel of all
    frames is white, the farthest is at the floor grey, and frames nearer or farther than others
    keep their difference (a per-image range would stretch each frame to white: flicker)."""
    from pose_factory.imageio import read_png

    lo, hi = [], []
    for e in batch["entries"]:
        d = read_png(str(batch["folder"] / e["files"]["depth"]["key"]))
        d = d[..., 0] if d.ndim == 3 else d
        subject = d > 0
        lo.append(int(d[subject].min()))
        hi.append(int(d[subject].max()))
    assert max(hi) == 255 and min(lo) <= int(0.15 * 255) + 2 and min(lo) >= int(0.15 * 255) - 1
    assert min(hi) < 250  # some frame's nearest point is farther than the batch's nearest
