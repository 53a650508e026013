"""Loaders: a batch's passes from storage (R2 or the local folder) through the local cache, as
IMAGE / MASK / POSE_KEYPOINT in manifest order (view-major or frame-major)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import uuid

import numpy as np

from ._common import (CATEGORY, black, feet_input, get_settings, hide_input, image_tensor, index_entry,
                      loader_batches, log, mask_tensor, occluded_input, progress_bar, temp_directory)
from pose_factory import loading
from pose_factory.storage import index
from pose_factory.render.openpose import OWN_KEY
from pose_factory.render.hide import validate_hide
from pose_factory import spec as spec_mod
from pose_factory.errors import StorageError
from pose_factory.render.passes import NORMAL_CONVENTIONS

CAT = f"{CATEGORY}/loaders"
_BATCH_RE = re.compile(r"[0-9a-f]{16}")
PREVIEW_MAX_SIDE = 1024
CURRENT_BATCH = "current batch"  # the batch `python -m pose_factory prepare-batch` made current


def _current_batch() -> dict:
    from pose_factory.storage.sync import current_batch

    info = current_batch(get_settings())
    if info is None:
        raise loading.SelectionError("batch_id", "'current batch' is empty",
                                     "a batch id, or first run: python -m pose_factory prepare-batch <batch>")
    return info


def _selection_inputs(loader: str) -> dict:
    """The loader's batch choice: one dropdown of "project/batch_id" entries (every project's batches
    this loader can load, newest first; web/js/pose_factory.js refreshes it after each render). The
    `project` widget stays declared, hidden, for older workflows and API prompts with a bare id."""
    batches = (loader_batches(loader) or [""]) + [CURRENT_BATCH]
    return {
        "project": ("STRING", {"default": "default", "hidden": True,
                               "tooltip": "Only for a bare batch id (older workflows, or a linked batch_id string): "
                                          "a batch_id entry 'project/id' carries its own project."}),
        "batch_id": (batches, {"default": batches[0],
                               "tooltip": "project/batch id: the batches of every project this machine made or "
                                          "loaded (the local index) that this loader can load, newest first. Any "
                                          "'project/id' or bare id is accepted. 'current batch': the one "
                                          "prepare-batch made current. Ignored when a batch input is linked."}),
        "views": ("STRING", {"default": "all", "tooltip": "'all', '0,2', '0-3' or both ('0,2-3')."}),
        "frames": ("STRING", {"default": "all", "tooltip": "'all', '0,2', '0-3' or both; frame i is pose i."}),
        "order": (list(loading.ORDERS), {"default": "view_major",
                                         "tooltip": "view_major: every frame of view 0, then view 1...; "
                                                    "frame_major: every view of frame 0, then frame 1..."}),
    }


def _selection(project, batch_id) -> tuple:
    """The widgets' (project, batch id): a "project/id" entry's own project wins over the widget."""
    inner, bid = index.split_choice(batch_id or "")
    return (inner if inner is not None else project), bid


def _validate_batch_id(batch_id, project=None):
    if batch_id == CURRENT_BATCH:
        return True
    project, bid = _selection(project, batch_id)
    if bid not in (None, "") and not (isinstance(bid, str) and _BATCH_RE.fullmatch(bid)):
        return (f"batch_id: got {_short(batch_id)}, allowed: a batch from the list ('project/' and 16 hexadecimal "
                f"characters), a bare batch id, {CURRENT_BATCH!r}, or empty with a batch linked")
    if project not in (None, ""):
        try:
            spec_mod.validate_project_name(project)
        except ValueError as e:
            return str(e)
    return True


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve(batch, project, batch_id) -> tuple[str, str]:
    if batch is not None:
        if not isinstance(batch, dict) or "project" not in batch or "batch_id" not in batch:
            raise ValueError(f"batch: got {type(batch).__name__}, allowed: the batch output of Request Pose Batch")
        project, batch_id = batch["project"], batch["batch_id"]
    elif batch_id == CURRENT_BATCH:
        current = _current_batch()
        project, batch_id = current["project"], current["batch_id"]
    else:
        project, batch_id = _selection(project, batch_id)
    spec_mod.validate_project_name(project)
    if not isinstance(batch_id, str) or not _BATCH_RE.fullmatch(batch_id):
        raise loading.SelectionError("batch_id", f"got {_short(batch_id)}",
                                     "a batch from the list (project/id), a batch id (16 hexadecimal characters), "
                                     "or link a batch input")
    return project, batch_id


def person_input(what: str) -> dict:
    """The loaders' `person` widget, optional and last, so workflows saved before it keep their
    widgets' order (and load "all", what they loaded then)."""
    return {"person": (list(loading.PERSONS), {
        "default": "all", "tooltip": f"all: every person of the batch; 0..7: {what} of that person only "
                                     "(person k is the k-th subject of the Scene chain, the first Scene node being "
                                     "person 0). A batch of one person has person 0 only."})}


def _is_changed(widgets: dict) -> str:
    """Widget values plus the index's record of the batch (its created_at changes when it is rendered
    again with force): equal strings let ComfyUI reuse the last output."""
    project, bid = _selection(widgets.get("project") or "", widgets.get("batch_id") or "")
    entry = index_entry(project or "", bid or "") or {}
    payload = {k: v for k, v in widgets.items() if k != "batch"}
    payload["_index"] = entry.get("created_at")
    if widgets.get("batch_id") == CURRENT_BATCH:  # prepare-batch made another batch current
        try:
            current = _current_batch()
            payload["_current"] = [current["project"], current["batch_id"], current.get("prepared_at")]
        except loading.SelectionError:
            payload["_current"] = None
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _fetch(settings, project, batch_id, names):
    state = {"bar": None}

    def progress(done, total):
        if state["bar"] is None:
            state["bar"] = progress_bar(total)
        if state["bar"] is not None:
            state["bar"].update_absolute(done, total)

    try:
        return loading.fetch_batch(settings, project, batch_id, names, progress=progress)
    except StorageError as e:
        elsewhere = [p for p in index.projects_holding(settings["storage"]["cache_root"], batch_id) if p != project]
        if not elsewhere:
            raise
        where = " and ".join(repr(p) for p in elsewhere)
        raise StorageError(f"batch {batch_id} is not in project {project!r}; it is in project {where}: pick "
                           f"'{elsewhere[0]}/{batch_id}' in batch_id") from None


def _or_black(arr, what, batch_id, n, h, w, channels=3):
    if arr is None:
        log.warning("3D Pose Factory: batch %s has no %s pass; returning black images", batch_id, what)
        return black(n, h, w, channels)
    return arr


def _overlay_grid(openpose, shaded):
    tiles = loading.grid(openpose, max_side=PREVIEW_MAX_SIDE)  # overlay after shrinking: fewer pixels
    return tiles if shaded is None else loading.overlay(tiles, loading.grid(shaded, max_side=PREVIEW_MAX_SIDE))


def _depth_normal_grid(depth, normal):
    """Each tile the depth over the normal of one image, the tiles in the grid nearest a square:
    side by side in a row the preview was a thin strip at the top of an empty node."""
    tiles = np.concatenate([depth, normal], axis=1)
    n, h, w = tiles.shape[:3]
    return loading.grid(tiles, max_side=PREVIEW_MAX_SIDE, cols=loading.square_cols(n, w, h))


def _with_preview(result: tuple, batch_id: str, make_grid) -> dict:
    """The node's outputs plus one grid image of what was loaded, in ComfyUI's temp folder (shown
    on the node); outside ComfyUI only the outputs."""
    folder = temp_directory()
    if folder is None:
        return {"result": result}
    from pose_factory.imageio import write_png

    name = f"pose_factory_{batch_id}_{uuid.uuid4().hex[:8]}.png"
    write_png(os.path.join(folder, name), make_grid())
    return {"result": result, "ui": {"images": [{"filename": name, "subfolder": "", "type": "temp"}]}}


class _BatchLoader:
    """What both loaders share: any batch id is accepted (VALIDATE_INPUTS names batch_id, so ids
    made after the page loaded pass the dropdown), and a re-run follows the widgets and the index."""
    CATEGORY = CAT
    FUNCTION = "load"
    OUTPUT_NODE = False
    # ComfyUI keeps the preview (ui) of such a node with its cached outputs and sends it again when a
    # re-run finds the node cached (execution.py _send_cached_ui); without it the preview vanished.
    HAS_INTERMEDIATE_OUTPUT = True

    @classmethod
    def VALIDATE_INPUTS(cls, batch_id=None, project=None):
        return _validate_batch_id(batch_id, project)

    @classmethod
    def IS_CHANGED(cls, **widgets):
        return _is_changed(widgets)


class PoseFactoryLoadPoseFromR2(_BatchLoader):
    DESCRIPTION = ("Loads a batch's OpenPose images, POSE_KEYPOINT and shaded references from storage (R2 or the "
                   "local folder) through the local cache: views and frames as 'all', '0,2' or '0-3'. hands/face "
                   "off, or an occluded choice other than the batch's, redraws the skeletons from the keypoints "
                   "(no re-render). occluded: joints the body covers: as rendered (the default: what Request Pose Batch "
                   "asked for), hide, show, or depth (far to near). person: all, or one person of a "
                   "batch of several (its keypoints and its skeleton alone). feet: the foot points drawn as "
                   "ComfyUI core's whole-body drawer draws them (a choice other than the batch's redraws). hide: "
                   "joints and groups left out (face, left_hand, l_wrist, 1:right_arm...): written 0,0,0 in the "
                   "keypoints, redrawn. A pass the batch lacks comes back black.")
    RETURN_TYPES = ("IMAGE", "POSE_KEYPOINT", "IMAGE")
    RETURN_NAMES = ("openpose", "pose_keypoint", "shaded")

    @classmethod
    def INPUT_TYPES(cls):
        required = _selection_inputs("pose")
        required["hands"] = ("BOOLEAN", {"default": True})
        required["face"] = ("BOOLEAN", {"default": True})
        return {"required": required, "optional": {
            "batch": ("POSE_FACTORY_BATCH",), **occluded_input(as_rendered=True),
            **person_input("the keypoints and the skeleton drawn"), **feet_input(), **hide_input()}}

    @classmethod
    def VALIDATE_INPUTS(cls, batch_id=None, project=None, hide=None):
        checked = _validate_batch_id(batch_id, project)
        return validate_hide(hide) if checked is True else checked

    def load(self, project, batch_id, views, frames, order, hands, face, batch=None, occluded=loading.AS_RENDERED,
             person="all", feet=False, hide=""):
        settings = get_settings()
        project, batch_id = _resolve(batch, project, batch_id)
        manifest, folder = _fetch(settings, project, batch_id, loading.POSE_PASSES)
        entries = loading.select_entries(manifest, views, frames, order)
        got = loading.load_pose(folder, manifest, entries, hands=bool(hands), face=bool(face), occluded=occluded,
                                person=person, feet=bool(feet), hide=hide)
        if occluded not in ("hide", loading.AS_RENDERED) and not any(
                "occluded" in (p.get(OWN_KEY) or {}) for k in got["keypoints"] for p in k.get("people", [])):
            log.warning("3D Pose Factory: batch %s was rendered before covered joints were kept; occluded %s "
                        "draws what hide does (render it again with force to get them)", batch_id, occluded)
        n, h, w = len(entries), int(manifest["height"]), int(manifest["width"])
        shaded = _or_black(got["shaded"], "shaded", batch_id, n, h, w)
        result = (image_tensor(got["openpose"]), got["keypoints"], image_tensor(shaded))
        return _with_preview(result, batch_id, lambda: _overlay_grid(got["openpose"], got["shaded"]))


class PoseFactoryDepthNormalLoader(_BatchLoader):
    DESCRIPTION = ("Loads a batch's depth, normal and segmentation maps and masks through the local cache. "
                   "depth_range batch: as rendered (one range for the batch by default); image: each image "
                   "re-normalised over its own subject (from the 16-bit depth). normal_convention: controlnet "
                   "(red left, green up), opengl (red right, green up), directx (red right, green down). parts: "
                   "groups (head, face, neck, torso, arms, hands, legs, feet, all) or part names (hand_l, "
                   "thigh_r...) whose pixels make the parts mask. person: all, or one person of a batch of several "
                   "(its subject_mask and parts_mask, from the batch's instance map).")
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE", "MASK", "MASK")
    RETURN_NAMES = ("depth", "normal", "seg", "subject_mask", "parts_mask")

    @classmethod
    def INPUT_TYPES(cls):
        required = _selection_inputs("depth_normal")
        required["depth_range"] = (list(loading.DEPTH_RANGES), {"default": "batch"})
        required["normal_convention"] = (list(NORMAL_CONVENTIONS), {"default": "controlnet"})
        required["parts"] = ("STRING", {"default": "hands",
                                        "tooltip": "Comma-separated part groups or part names for the parts mask "
                                                   "(props, or prop0, prop1, ... for a batch's props)."})
        return {"required": required, "optional": {
            "batch": ("POSE_FACTORY_BATCH",), **person_input("subject_mask and parts_mask")}}

    def load(self, project, batch_id, views, frames, order, depth_range, normal_convention, parts, batch=None,
             person="all"):
        settings = get_settings()
        project, batch_id = _resolve(batch, project, batch_id)
        names = loading.depth_normal_passes(depth_range, normal_convention)
        label_ids = loading.parse_parts(parts)  # refuse a bad list before any download
        manifest, folder = _fetch(settings, project, batch_id, names)
        entries = loading.select_entries(manifest, views, frames, order)
        got = loading.load_depth_normal(folder, manifest, entries, depth_range, normal_convention, label_ids,
                                        person=person)
        n, h, w = len(entries), int(manifest["height"]), int(manifest["width"])
        depth = _or_black(got["depth"], "depth" if depth_range == "batch" else "depth16", batch_id, n, h, w)
        normal = _or_black(got["normal"], "normal", batch_id, n, h, w)
        result = (image_tensor(depth), image_tensor(normal),
                  image_tensor(_or_black(got["seg"], "seg", batch_id, n, h, w)),
                  mask_tensor(_or_black(got["subject"], "mask", batch_id, n, h, w, None)),
                  mask_tensor(_or_black(got["parts"], "parts", batch_id, n, h, w, None)))
        return _with_preview(result, batch_id, lambda: _depth_normal_grid(depth, normal))


NODE_CLASS_MAPPINGS = {
    "PoseFactoryLoadPoseFromR2": PoseFactoryLoadPoseFromR2,
    "PoseFactoryDepthNormalLoader": PoseFactoryDepthNormalLoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PoseFactoryLoadPoseFromR2": "Load Pose Batch",
    "PoseFactoryDepthNormalLoader": "Load Depth / Normal / Seg",
}
