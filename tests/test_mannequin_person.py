"""The mannequin reads as a person: the real MediaPipe pose model (from its wheel, offline)
finds a person on the shaded renders, and its keypoints agree with ours (PCK@0.2)."""
import json

import numpy as np
import pytest

from pose_factory import imageio, render, storage as storage_mod
from pose_factory.render import cameras
from pose_factory.extract import mediapipe_to_openpose

pytestmark = [pytest.mark.blender, pytest.mark.mediapipe]
PRESETS = ["a_pose", "walk_left_step", "reaching_forward"]


def test_mediapipe_finds_the_person_with_pck_at_least_0_8(tmp_path):
    mp = pytest.importorskip("mediapipe", reason="the worker environment carries MediaPipe")
    spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "tests",
            "render": {"width": 512, "height": 512, "passes": ["keypoints", "shaded"]},
            # three-quarter views, front-right and back-left
            "cameras": {"type": "orbit", "views": 2, "elevation": 10, "start_azimuth": -45},
            "subjects": [{"type": "mannequin", "poses": PRESETS}]}
    manifest, _ = render.render_batch(spec, storage_mod.LocalStorage(tmp_path))
    folder = tmp_path / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    hits, total = 0, 0
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as model:
        for e in manifest["entries"]:
            img = imageio.read_png(str(folder / e["files"]["shaded"]["key"]))
            found = model.process(img)
            assert found.pose_landmarks, f"no person found in view {e['view']} frame {e['frame']}"
            lm = np.array([[p.x, p.y, p.z, p.visibility] for p in found.pose_landmarks.landmark])
            theirs, _ = mediapipe_to_openpose(lm, img.shape[1], img.shape[0])
            kp = json.loads((folder / e["files"]["keypoints"]["key"]).read_text())
            ours = np.array(kp["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
            # torso size from the 3D joints projected (the hips may be hidden in the image)
            joints = manifest["joints_3d"][e["frame"]]["joints"]
            cam = manifest["views"][e["view"]]
            xy, _ = cameras.project(cam, np.array([joints["neck"], joints["l_hip"], joints["r_hip"]]))
            torso = np.linalg.norm(xy[0] - (xy[1] + xy[2]) / 2)
            seen = ours[:, 2] == 1.0
            dist = np.linalg.norm(theirs - ours[:, :2], axis=1)
            hits += int((dist[seen] <= 0.2 * torso).sum())
            total += int(seen.sum())
    assert total >= 60
    assert hits / total >= 0.8, f"PCK@0.2 = {hits / total:.2f}"
