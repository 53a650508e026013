"""Helpers the nodes share: settings, numpy -> tensor, and ComfyUI's modules imported lazily, so
the pack imports (and its tests run) without torch being touched at import or ComfyUI installed."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PACK_ROOT not in sys.path:  # ComfyUI imports the pack by file path: the core becomes importable by
    sys.path.append(PACK_ROOT)  # name, one module shared by nodes and routes; appended, so it shadows nothing

import numpy as np  # noqa: E402

from pose_factory.storage import index  # noqa: E402
from pose_factory import settings as settings_mod  # noqa: E402
from pose_factory.errors import SpecError  # noqa: E402
from pose_factory import spec as spec_mod  # noqa: E402

log = logging.getLogger("pose_factory")
CATEGORY = "3D Pose Factory"


def hide_input() -> dict:
    """The `hide` widget of the loaders and Pose Keypoints To Image: optional, after the others, so
    workflows saved before it keep their widgets' order (and hide nothing, as then)."""
    return {"hide": ("STRING", {
        "default": "", "tooltip": "Joints to leave out, comma-separated: groups (face, head, eyes, ears, hands, "
                                  "left_hand, right_hand, arms, left_arm, right_arm, legs, left_leg, right_leg, "
                                  "feet, left_foot, right_foot) or points (nose, neck, l_wrist or left_wrist, "
                                  "r_knee, l_heel...); '1:left_hand' for person 1 only. Hidden points are not "
                                  "drawn and are written 0,0,0 in the keypoints (their place kept in this pack's "
                                  "field); empty: every joint."})}


def occluded_input(as_rendered: bool = False) -> dict:
    """The `occluded` widget the drawing nodes share: an optional input, so workflows saved
    before it existed still load and queue (they get hide, what they drew then). as_rendered (the
    batch loader): a first choice "as rendered", the default, that draws what the batch's request
    asked for; an explicit choice overrides it."""
    from pose_factory.loading import AS_RENDERED
    from pose_factory.render.openpose import OCCLUDED_MODES

    tip = ("Joints the body covers: hide (as a detector sees the photo), show (every limb), depth (every limb, "
           "far to near, so near limbs overdraw far ones).")
    if as_rendered:
        return {"occluded": ([AS_RENDERED, *OCCLUDED_MODES], {
            "default": AS_RENDERED, "tooltip": f"{tip} {AS_RENDERED} (the default): what Request Pose Batch asked for."})}
    return {"occluded": (list(OCCLUDED_MODES), {"default": "hide", "tooltip": tip + " The default: hide."})}


def feet_input() -> dict:
    """The `feet` switch the drawing nodes share: an optional input (appended, so workflows saved
    before it keep their widget values and draw what they drew then), default off."""
    return {"feet": ("BOOLEAN", {"default": False, "tooltip": (
        "Draw the foot points (big toe, small toe, heel per foot) as ComfyUI core's whole-body drawer does "
        "(SDPose Draw Keypoints' draw_feet). Off (the default): the OpenPose image as before.")})}


def _move_pack_data_out() -> None:
    """Inside ComfyUI the data root is outside the pack (settings.py): an older in-pack data/
    moves there when ComfyUI loads the pack, before any node or route touches it; and the root is
    recorded for the command line (settings.record_comfyui_root)."""
    try:
        settings_mod.migrate_pack_data()
        get_settings()
    except Exception as e:  # noqa: BLE001  importing the pack must never fail (DESIGN.md §2)
        log.warning("3D Pose Factory: could not move the pack's data/ to the data root, or record the root: %s", e)


def get_settings() -> dict:
    """The pack's settings ($POSE_FACTORY_CONFIG, else config/local.yaml, else defaults). Read on
    every call, so an edited config applies without restarting ComfyUI; inside ComfyUI the data root
    it names is recorded for the command line (a pointer outside the pack, rewritten when it changes)."""
    settings = settings_mod.load_settings()
    settings_mod.record_comfyui_root(settings)
    return settings


_move_pack_data_out()


def known_batches() -> list[str]:
    """The local index's batches as "project/batch_id", newest first, every project (never the
    network: this runs for /object_info). An unreadable config or index gives an empty list,
    never an error."""
    try:
        return index.choices(get_settings()["storage"]["cache_root"])
    except Exception as e:  # noqa: BLE001  INPUT_TYPES must not fail: the page would lose every node
        log.warning("3D Pose Factory: cannot read the local batch index: %s", e)
        return []


# JobSpec paths -> the words a node shows: its widgets, "frame i" for pose i, "person k" for subjects[k]
_PLAIN_PATHS = ((re.compile(r"^subjects\[0\]\.poses\[(\d+)\]"), r"frame \1"), (re.compile(r"^subjects\[0\]\.?"), ""),
                (re.compile(r"^subjects\[(\d+)\]\.poses\[(\d+)\]"), r"person \1 frame \2"),
                (re.compile(r"^subjects\[(\d+)\]\.?"), r"person \1."),
                (re.compile(r"^render\.(openpose\.)?"), ""), (re.compile(r"^cameras\.?"), ""),
                (re.compile(r"^pose\b\.?"), ""), (re.compile(r"\bjoints\."), ""), (re.compile(r"\[(\d+)\]"), r" \1"))


def plain_error(e: SpecError, widget: str | None = None) -> SpecError:
    """A SpecError in a node's words, short, no traceback: field 'subjects[0].poses[2].joints.l_elbow.flex'
    becomes 'frame 2 l_elbow flex'; with widget, the error names the widget and says where inside it:
    'joints: l_elbow flex: got 400, allowed -10..150 (...)'."""
    where = e.field or ""
    for pattern, repl in _PLAIN_PATHS:
        where = pattern.sub(repl, where)
    where = where.replace(".", " ").strip()
    text = str(e)[len(e.field) + 2:] if e.field else str(e)
    if widget is None:
        return SpecError(where, text)
    if where and where != widget and f"'{where.split()[-1]}'" not in text:  # unless the text names it already
        text = f"{where}: {text}"
    return SpecError(widget, text)


def loader_batches(loader: str) -> list[str]:
    """known_batches() that the loader ("pose" or "depth_normal", loading.LOADER_NEEDS) can load:
    a mesh batch is not offered to Load Pose Batch. Local index only, never the network."""
    from pose_factory.loading import loadable

    try:
        return index.choices(get_settings()["storage"]["cache_root"], lambda s: loadable(s.get("passes"), loader))
    except Exception as e:  # noqa: BLE001  INPUT_TYPES must not fail: the page would lose every node
        log.warning("3D Pose Factory: cannot read the local batch index: %s", e)
        return []


# --- the project widget: one control per node (web/js/projects.js adds "new…" and "rename…") ------
def known_projects() -> tuple[list[str], str]:
    """(the projects of the local index plus the configured default, sorted; that default). Never
    the network (INPUT_TYPES runs for /object_info), never an error."""
    try:
        settings = get_settings()
        default = settings["project"]
        names = index.projects(settings["storage"]["cache_root"])
    except Exception as e:  # noqa: BLE001
        log.warning("3D Pose Factory: cannot read the projects of the local index: %s", e)
        default, names = "default", []
    return sorted(set(names) | {default}), default


def project_input(tooltip: str) -> tuple:
    """A COMBO of known_projects(), defaulting to the configured project. Any project name is
    accepted (nodes name `project` in VALIDATE_INPUTS, which makes ComfyUI skip the list check), so
    an old workflow's text value, an API prompt's name or a project made after the page loaded
    still run."""
    names, default = known_projects()
    return (names, {"default": default, "tooltip": tooltip})


def check_project_widget(project, sanitize: bool = True):
    """VALIDATE_INPUTS for a project widget: True, or the error text. sanitize: the value is made a
    project name when the node runs (Request Pose Batch's 'My Poses' -> 'my-poses', empty -> the
    configured project), so only a value with nothing usable is refused; else it must be valid."""
    if project is None or (sanitize and isinstance(project, str) and not project.strip()):
        return True  # linked (its value comes when the prompt runs), or the configured default
    try:
        (spec_mod.sanitize_project_name if sanitize else spec_mod.validate_project_name)(project)
    except ValueError as e:
        return str(e)
    return True


def node_project(project, settings: dict) -> str:
    """The project a node uses: its widget's value made a project name, the configured one if empty."""
    return spec_mod.sanitize_project_name(project) if str(project).strip() else settings["project"]


def index_entry(project: str, batch_id: str) -> dict | None:
    try:
        return index.load(get_settings()["storage"]["cache_root"]).get(project, {}).get(batch_id)
    except Exception:  # noqa: BLE001  (IS_CHANGED must not raise either)
        return None


# --- tensors -------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def image_tensor(stack):
    """uint8 or float numpy [B,H,W,3] -> IMAGE: float32 torch tensor in 0..1."""
    torch = _torch()
    t = torch.from_numpy(np.ascontiguousarray(stack))
    if t.dtype == torch.uint8:
        return t.to(torch.float32).div_(255.0)
    return t.to(torch.float32)


def mask_tensor(stack):
    """numpy [B,H,W] (float 0..1 or bool) -> MASK: float32 torch tensor."""
    torch = _torch()
    return torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))


def black(n: int, h: int, w: int, channels: int | None = 3):
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    return np.zeros(shape, np.uint8 if channels else np.float32)


# --- ComfyUI, when present ------------------------------------------------------------------------
def progress_bar(total: int):
    """comfy.utils.ProgressBar, or None outside ComfyUI."""
    try:
        from comfy.utils import ProgressBar
    except ImportError:
        return None
    return ProgressBar(max(1, int(total)))


def interrupt_check():
    """comfy.model_management.throw_exception_if_processing_interrupted, or None outside ComfyUI."""
    try:
        from comfy.model_management import throw_exception_if_processing_interrupted
    except ImportError:
        return None
    return throw_exception_if_processing_interrupted


def send_message(event: str, data: dict) -> None:
    """PromptServer.instance.send_sync(event, data) when the server runs; otherwise nothing."""
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is not None:
        instance.send_sync(event, data)


FINAL_STATES = ("completed", "failed", "cancelled", "refused")  # what a job's last message says


def final_state(error: BaseException) -> str:
    """The final state of a job that raised: cancelled (ComfyUI's interrupt, or a cancel from
    elsewhere), refused (over the limits or the budget, or a wrong request: nothing ran), failed."""
    from pose_factory.jobs.budget import BudgetExceeded
    from pose_factory.jobs.client import JobCancelled

    if type(error).__name__ == "InterruptProcessingException" or isinstance(error, (JobCancelled, KeyboardInterrupt)):
        return "cancelled"
    if isinstance(error, (SpecError, BudgetExceeded)):
        return "refused"
    return "failed"


@contextlib.contextmanager
def send_final_on_error(message: dict):
    """Around a job: when it raises, the job's last "pose_factory.progress" message (message plus
    state failed, cancelled or refused, and for the first two the error's first line) is sent before the error goes
    on, so a sidebar or node that showed it queued or rendering follows the server's state."""
    try:
        yield
    except BaseException as e:
        state, text = final_state(e), str(e).strip()
        final = dict(message, state=state)
        if state != "cancelled":  # the reason, for failed and refused; a cancel needs none
            final["error"] = text.splitlines()[0][:300] if text else type(e).__name__
        send_message("pose_factory.progress", final)
        raise


def input_directory() -> str | None:
    """ComfyUI's input folder; None outside ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return None
    return folder_paths.get_input_directory()


def input_files(extensions) -> list[str]:
    """The files in ComfyUI's input folder (and its subfolders) whose names end with one of
    extensions (lower case, with the dot), as paths relative to it with "/", sorted; [] outside
    ComfyUI."""
    root = input_directory()
    found = []
    if root and os.path.isdir(root):
        for folder, _dirs, files in os.walk(root):
            found += [os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/")
                      for f in files if f.lower().endswith(tuple(extensions))]
    return sorted(found)


def temp_directory() -> str | None:
    try:
        import folder_paths
    except ImportError:
        return None
    return folder_paths.get_temp_directory()
