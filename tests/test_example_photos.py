"""Issue 21.7 and 21.11: "Photo to pose" runs on its first click (the pack's example photos, put
into ComfyUI's input folder once, never overwriting), "no person found" is an error that says so
and what to do, and an image that is too small reads as what it is, not as a set-up problem."""
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from pose_factory import example_inputs

ROOT = Path(__file__).resolve().parent.parent


def extract_nodes_module():
    from tests.test_nodes import load_pack_like_comfyui

    pack = load_pack_like_comfyui()
    return sys.modules[f"{pack.__name__}.nodes.extract_nodes"]


def use_config(tmp_path, monkeypatch, **extra):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}, **extra}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))


def tensor(arr):
    import torch

    return torch.from_numpy(np.asarray(arr, np.float32)[None] / 255.0)


# --- the photos in the input folder ---------------------------------------------------------------
def test_the_photos_are_copied_once_and_a_file_of_that_name_is_never_overwritten(tmp_path):
    target = tmp_path / "input"
    first = example_inputs.install(target)
    assert first == {"copied": list(example_inputs.FILES), "kept": [], "failed": []}
    for name in example_inputs.FILES:
        assert (target / name).read_bytes() == (example_inputs.SOURCE_DIR / name).read_bytes()
    (target / example_inputs.PHOTO).write_bytes(b"the user's own file")
    (target / example_inputs.RIG).write_bytes(b"the user's own rig")
    (target / example_inputs.POSTURE_SIDE).unlink()
    second = example_inputs.install(target)
    assert second == {"copied": [example_inputs.POSTURE_SIDE], "failed": [],
                      "kept": [example_inputs.PHOTO, example_inputs.POSTURE_FRONT, example_inputs.RIG]}
    assert (target / example_inputs.PHOTO).read_bytes() == b"the user's own file"
    assert (target / example_inputs.RIG).read_bytes() == b"the user's own rig"
    assert files_under(target) == sorted(example_inputs.FILES)  # no temporary file left


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_template_rig_goes_into_the_3d_subfolder_which_is_made_when_missing(tmp_path):
    """Issue 22: the custom-rig template's rig (the mannequin as a Mixamo-named GLB) lies in the
    input folder's 3d/ subfolder, where ComfyUI's own 3D nodes keep models."""
    assert example_inputs.RIG.startswith("3d/") and example_inputs.RIG in example_inputs.FILES
    report = example_inputs.install(tmp_path / "input", files=(example_inputs.RIG,))
    assert report == {"copied": [example_inputs.RIG], "kept": [], "failed": []}
    copied = (tmp_path / "input" / example_inputs.RIG).read_bytes()
    assert copied[:4] == b"glTF" and copied == (example_inputs.SOURCE_DIR / example_inputs.RIG).read_bytes()
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "3d").write_text("a file where the 3d folder should be")
    report = example_inputs.install(blocked, files=(example_inputs.RIG,))
    assert report["copied"] == [] and len(report["failed"]) == 1 and example_inputs.RIG in report["failed"][0]


def test_a_folder_that_cannot_be_written_is_reported_not_raised(tmp_path):
    blocked = tmp_path / "input"
    blocked.write_text("a file where the folder should be")
    report = example_inputs.install(blocked)
    assert report["copied"] == [] and len(report["failed"]) == len(example_inputs.FILES)
    assert all(str(blocked) in why for why in report["failed"])
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            assert len(example_inputs.install(ro)["failed"]) == len(example_inputs.FILES)
            assert os.listdir(ro) == []
        finally:
            ro.chmod(0o755)


def test_nothing_is_written_inside_the_pack_folder(tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    pack.mkdir()
    monkeypatch.setattr(example_inputs, "PACK_ROOT", pack)
    report = example_inputs.install(pack / "input")
    assert report["copied"] == [] and len(report["failed"]) == len(example_inputs.FILES)
    assert "inside the pack" in report["failed"][0]
    assert list(pack.iterdir()) == []


def test_loading_the_pack_puts_the_photos_into_comfyuis_input_folder(tmp_path, monkeypatch):
    module = extract_nodes_module()
    target = tmp_path / "comfy_input"
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(get_input_directory=lambda: str(target)))
    module.install_example_photos()
    assert files_under(target) == sorted(example_inputs.FILES)
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(
        get_input_directory=lambda: str(tmp_path / "a_file")))
    (tmp_path / "a_file").write_text("x")
    module.install_example_photos()  # logged, not raised: importing the pack never fails


def test_the_photo_template_loads_the_packs_photos():
    for path in (ROOT / "example_workflows" / "api" / "photo_to_pose.json",):
        prompt = json.loads(path.read_text())
        loads = {nid: n["inputs"]["image"] for nid, n in prompt.items() if n["class_type"] == "LoadImage"}
        assert loads and set(loads.values()) <= set(example_inputs.PHOTOS)
        posture = next(n for n in prompt.values() if n["class_type"] == "PoseFactoryPostureAnalysis")["inputs"]
        assert loads[posture["front_image"][0]] == example_inputs.POSTURE_FRONT
        assert loads[posture["side_image"][0]] == example_inputs.POSTURE_SIDE
        for n in prompt.values():
            if n["class_type"] in ("PoseFactoryExtractPose", "PoseFactoryPoseFromPhoto"):
                assert loads[n["inputs"]["image"][0]] == example_inputs.PHOTO
    ui = json.loads((ROOT / "example_workflows" / "Photo to pose - no models.json").read_text())
    assert {n["widgets_values"][0] for n in ui["nodes"] if n["type"] == "LoadImage"} == set(example_inputs.PHOTOS)


# --- wording (21.11) -------------------------------------------------------------------------------
def test_a_too_small_image_is_said_to_be_too_small_not_a_set_up_problem(tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch)
    nodes = extract_nodes_module()
    small = tensor(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(ValueError) as e:
        nodes.PoseFactoryExtractPose().extract(small, False, False)
    assert str(e.value).startswith("image too small: 64×64, need at least 100×100")
    assert "worker" not in str(e.value)
    big = tensor(np.full((120, 120, 3), 128, np.uint8))
    with pytest.raises(ValueError, match=r"^side image too small: 64×64, need at least 100×100"):
        nodes.PoseFactoryPostureAnalysis().analyse(big, small)
    two = tensor(np.full((64, 90, 3), 1, np.uint8)).expand(2, -1, -1, -1)
    with pytest.raises(ValueError, match=r"^image 1 of 2 too small: 90×64, need at least 100×100"):
        nodes.PoseFactoryPoseFromPhoto().make(two)


@pytest.mark.blender
@pytest.mark.mediapipe
def test_a_worker_set_up_problem_keeps_its_set_up_hint(tmp_path, monkeypatch):
    """A worker Python without MediaPipe (ComfyUI's side's own venv): the real worker starts, cannot
    extract, and the node says where pose extraction runs and which setting names it."""
    comfy_python = ROOT / ".venv-comfy" / "bin" / "python"
    if not comfy_python.exists():
        pytest.skip("no .venv-comfy (the ComfyUI-side venv, without MediaPipe)")
    use_config(tmp_path, monkeypatch, worker_python=str(comfy_python))
    from pose_factory.jobs import client

    nodes = extract_nodes_module()
    try:
        with pytest.raises(RuntimeError) as e:
            nodes.PoseFactoryExtractPose().extract(tensor(np.full((120, 120, 3), 128, np.uint8)), False, False)
    finally:
        client.close_clients()
    assert "worker environment" in str(e.value) and "worker_python" in str(e.value)
    assert "MediaPipe is not installed" in str(e.value)


# --- the template's photos through the nodes and the real worker ---------------------------------------
@pytest.mark.blender
@pytest.mark.mediapipe
def test_the_example_photos_run_through_the_nodes_and_nobody_is_a_clear_error(tmp_path, monkeypatch):
    from PIL import Image

    from pose_factory.jobs import client

    use_config(tmp_path, monkeypatch)
    nodes = extract_nodes_module()
    photo, front, side = (tensor(np.asarray(Image.open(example_inputs.SOURCE_DIR / name).convert("RGB")))
                          for name in (example_inputs.PHOTO, example_inputs.POSTURE_FRONT, example_inputs.POSTURE_SIDE))
    nobody = tensor(np.full((200, 300, 3), 128, np.uint8))
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # MediaPipe runs in the worker, never here
    try:
        skel, frames, info = nodes.PoseFactoryExtractPose().extract(photo, True, False, face=True)
        assert len(frames[0]["people"]) == 1 and float(skel.max()) > 0 and "found in 1 of 1" in info
        poses, _ = nodes.PoseFactoryPoseFromPhoto().make(photo)["result"]  # its "ui" part: the 3D viewer
        assert len(poses) == 1 and poses[0]["joints"]
        out = nodes.PoseFactoryPostureAnalysis().analyse(front, side)
        assert json.loads(out[0])["status"] == "success" and len(out) == 10

        with pytest.raises(ValueError) as e:  # before: a black skeleton and not a word
            nodes.PoseFactoryExtractPose().extract(nobody, False, False)
        assert "no person found in the image (300×200" in str(e.value) and "Load Image" in str(e.value)
        import torch  # a batch where one image has nobody: black for it, and said so first in info

        pair = torch.cat([photo, tensor(np.full(tuple(photo.shape[1:]), 128, np.uint8))])
        skel, frames, info = nodes.PoseFactoryExtractPose().extract(pair, False, False)
        assert info.startswith("no person found in image 2 of 2: black skeleton") and float(skel[1].max()) == 0
        with pytest.raises(ValueError) as e:
            nodes.PoseFactoryPostureAnalysis().analyse(front, nobody)
        message = str(e.value)
        assert "Could not detect pose landmarks in the side image" in message
        assert "in profile" in message and "side Load Image" in message
    finally:
        client.close_clients()
