"""Drawing code from outside our own, loaded for tests (DESIGN.md §6 "Oracles"). Nothing here is
copied: each loader reads the other project's own file at test time and runs its lines.

controlnet-aux: controlnet_aux/open_pose/util.py from the controlnet-aux wheel on PyPI (version
pinned in scripts/fetch_oracles.sh, which extracts that one file to .cache/oracles/).

- Its only package-relative import is `from .body import BodyResult, Keypoint`; the real body.py
  imports torch, scipy and the network model. The drawing functions only read `.x` and `.y` of
  the keypoints, so util.py is loaded under a stand-in package whose `body` module defines those
  two NamedTuples with controlnet-aux's fields. Every line of util.py itself runs unmodified.
- draw_handpose imports matplotlib (for hsv_to_rgb) inside the function; the real matplotlib is
  used (it is in the venv as a mediapipe dependency; fetch_oracles.sh installs it if missing).
- 0.0.10 reads no POSE_KEYPOINT itself; oracle_draw feeds it one as the family's JSON readers do
  (comfyui_controlnet_aux's and sd-webui-controlnet's decode_json_as_poses: a point with c < 1 is
  None), normalised to 0..1 as util.py wants.

ComfyUI core's SDPose drawing: comfy_extras/nodes_sdpose.py, whose module imports torch, comfy
and comfy_api (a ComfyUI install), so it cannot be imported alone. sdpose_draw_node() parses that
file and executes, unmodified, its `KeypointDraw` class (the drawing, needs numpy and OpenCV) and
the body of `SDPoseDrawKeypoints.execute` (POSE_KEYPOINT → people → KeypointDraw, the path a user's
graph takes). The only names given from outside are ComfyUI's device plumbing around the result:
`comfy.model_management.intermediate_device/dtype` (CPU, float32), `io.NodeOutput` (returns its
arguments) and `tqdm` (the real one). The file is read from a ComfyUI checkout: $COMFYUI_DIR, or
the one scripts/comfy_harness_check.sh runs (~/.cache/comfy-harness/ComfyUI).
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import List, NamedTuple, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONTROLNET_AUX_UTIL = ROOT / ".cache" / "oracles" / "controlnet_aux_open_pose_util.py"
SDPOSE_REL = Path("comfy_extras") / "nodes_sdpose.py"


def controlnet_aux_util():
    """controlnet-aux's open_pose/util.py as a module (pytest.fail when it was never fetched)."""
    import pytest

    if not CONTROLNET_AUX_UTIL.exists():
        pytest.fail(f"OpenPose oracle missing ({CONTROLNET_AUX_UTIL.relative_to(ROOT)}): "
                    "run scripts/fetch_oracles.sh (or `make setup`)", pytrace=False)
    pkg_name = "_cnaux_open_pose"
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = []
    body = types.ModuleType(pkg_name + ".body")

    class Keypoint(NamedTuple):
        x: float
        y: float
        score: float = 1.0
        id: int = -1

    class BodyResult(NamedTuple):
        keypoints: List[Optional[Keypoint]]
        total_score: float
        total_parts: int

    body.Keypoint, body.BodyResult = Keypoint, BodyResult
    sys.modules[pkg_name], sys.modules[body.__name__] = pkg, body
    spec = importlib.util.spec_from_file_location(pkg_name + ".util", CONTROLNET_AUX_UTIL)
    util = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(util)
    util.Keypoint = Keypoint
    return util


def oracle_draw(util, frame, hands=True, face=True):
    """controlnet-aux's draw_poses loop over util.py, fed one POSE_KEYPOINT frame."""
    w, h = frame["canvas_width"], frame["canvas_height"]
    kp = util.Keypoint

    def points(flat, missing):
        if not flat:
            return None
        return [kp(flat[i] / w, flat[i + 1] / h) if flat[i + 2] >= 1 else missing
                for i in range(0, len(flat), 3)]

    canvas = np.zeros((h, w, 3), np.uint8)
    for p in frame["people"]:
        canvas = util.draw_bodypose(canvas, points(p["pose_keypoints_2d"], None))
        if hands:
            canvas = util.draw_handpose(canvas, points(p["hand_left_keypoints_2d"], kp(-1, -1)))
            canvas = util.draw_handpose(canvas, points(p["hand_right_keypoints_2d"], kp(-1, -1)))
        if face:
            canvas = util.draw_facepose(canvas, points(p["face_keypoints_2d"], kp(-1, -1)))
    return canvas


def sdpose_source() -> Path | None:
    """Core's nodes_sdpose.py in a ComfyUI checkout, or None."""
    for d in (os.environ.get("COMFYUI_DIR"), Path.home() / ".cache" / "comfy-harness" / "ComfyUI"):
        if d and (Path(d) / SDPOSE_REL).is_file():
            return Path(d) / SDPOSE_REL
    return None


def sdpose_keypoint_draw(path: Path):
    """Core's KeypointDraw class (nodes_sdpose.py, executed unmodified): draw_wholebody_keypoints
    on a canvas of ours."""
    import colorsys
    import math

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KeypointDraw")
    ns = {"np": np, "math": math, "colorsys": colorsys}
    exec(compile(ast.Module(body=[cls], type_ignores=[]), str(path), "exec"), ns)  # noqa: S102 - another project's file
    return ns["KeypointDraw"]


def sdpose_draw_node(path: Path):
    """draw(pose_keypoint, **widgets) -> uint8 [B,H,W,3]: core's SDPose Draw Keypoints node."""
    import torch
    from tqdm import tqdm

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    execute = next(n for n in classes["SDPoseDrawKeypoints"].body
                   if isinstance(n, ast.FunctionDef) and n.name == "execute")
    execute.decorator_list = []  # a classmethod on an io.ComfyNode; called here with cls=None
    module = ast.Module(body=[classes["KeypointDraw"], execute], type_ignores=[])
    mm = types.SimpleNamespace(intermediate_device=lambda: torch.device("cpu"),
                               intermediate_dtype=lambda: torch.float32)
    import colorsys
    import math

    ns = {"np": np, "math": math, "colorsys": colorsys, "torch": torch, "tqdm": tqdm,
          "comfy": types.SimpleNamespace(model_management=mm),
          "io": types.SimpleNamespace(NodeOutput=lambda *outputs: outputs)}
    exec(compile(module, str(path), "exec"), ns)  # noqa: S102 - another project's file, read for a test

    def draw(pose_keypoint, draw_body=True, draw_hands=True, draw_face=True, draw_feet=False, stick_width=4,
             face_point_size=3, score_threshold=0.3, draw_head=True):
        (images,) = ns["execute"](None, pose_keypoint, draw_body, draw_hands, draw_face, draw_feet, stick_width,
                                  face_point_size, score_threshold, draw_head)
        return np.rint(images.numpy() * 255.0).astype(np.uint8)

    return draw
