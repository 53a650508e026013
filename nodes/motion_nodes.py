"""Motion Clip: a BVH clip (ComfyUI's input folder, a local path, or a storage key) retargeted
onto the mannequin as one pose per frame, with the retarget report (pose_factory/motion/)."""
from __future__ import annotations

import os

from ._common import CATEGORY, get_settings, input_directory, input_files
from pose_factory.errors import SpecError
from pose_factory.motion import clip as clip_mod
from pose_factory.motion import names

NO_FILE = "(use path_or_key)"
KEY_PREFIX = "key:"


def input_clips() -> list[str]:
    """The .bvh files in ComfyUI's input folder (and its subfolders), sorted."""
    return input_files((".bvh",))


def _source(clip: str, path_or_key: str):
    """("key", key) or ("path", file) of the widgets: path_or_key wins when it is set."""
    text = (path_or_key or "").strip()
    if text.startswith(KEY_PREFIX):
        return "key", text[len(KEY_PREFIX):].strip()
    if text:
        if not text.lower().endswith(".bvh") or not os.path.isfile(text):
            raise SpecError("path_or_key", f"no .bvh file at {text[:120]!r}",
                            f"an existing .bvh file on this machine, or '{KEY_PREFIX}<storage key>'")
        return "path", text
    root = input_directory()
    if not clip or clip == NO_FILE or root is None:
        raise SpecError("clip", "no clip chosen", "a .bvh file in ComfyUI's input folder, or path_or_key")
    full = os.path.realpath(os.path.join(root, clip))
    if os.path.commonpath([full, os.path.realpath(root)]) != os.path.realpath(root) or not os.path.isfile(full):
        raise SpecError("clip", f"no file {clip[:120]!r} in the input folder", "a .bvh file in ComfyUI's input folder")
    return "path", full


class PoseFactoryMotionClip:
    DESCRIPTION = ("A BVH motion clip as poses, one per frame: read with Blender's BVH importer (the worker "
                   "environment), retargeted onto the mannequin through a bone-name map (cmu, mixamo with or "
                   "without 'mixamorig:', smpl, mannequin, or a custom JSON map), joint limits clamped, root "
                   "motion scaled to the subject's height. The report lists the naming, the clamps and every "
                   "clip bone not used. docs/motion.md.")
    CATEGORY = f"{CATEGORY}/spec"
    FUNCTION = "load"
    RETURN_TYPES = ("POSE_FACTORY_POSES", "STRING")
    RETURN_NAMES = ("poses", "report")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip": ([NO_FILE, *input_clips()], {"tooltip": "A .bvh file in ComfyUI's input folder."}),
            "path_or_key": ("STRING", {"default": "", "tooltip": "Instead of clip: a .bvh path on this machine, or "
                                       f"'{KEY_PREFIX}<key>' of a .bvh in the configured storage (local or R2)."}),
            "start": ("INT", {"default": 0, "min": 0, "max": 200000, "tooltip": "First clip frame (0-based)."}),
            "end": ("INT", {"default": -1, "min": -1, "max": 200000, "tooltip": "Last clip frame; -1 = the last."}),
            "step": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip": "Every n-th clip frame."}),
            "fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1000.0, "step": 1.0,
                              "tooltip": "Playback rate of the output; 0 = the clip's own rate / step."}),
            "naming": (list(names.NAMINGS), {"default": "auto"}),
        }, "optional": {
            "subject": ("POSE_FACTORY_SUBJECT", {"tooltip": "Its height scales the root motion (default 1.75 m)."}),
            "custom_map": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": 'naming custom: {"root": "pelvis", "l_hip": "hip_L", ...} or '
                                                 '{"base": "mixamo", "joints": {"chest": "Spine1"}}'}),
        }}

    @classmethod
    def IS_CHANGED(cls, clip=None, path_or_key="", **_widgets):
        """The clip file's size and time (a clip replaced under the same name runs again); a
        storage key as it is (no network here); never an exception."""
        try:
            kind, where = _source(clip, path_or_key)
            if kind == "key":
                return f"key:{where}"
            st = os.stat(where)
            return f"{where}:{st.st_size}:{st.st_mtime_ns}"
        except (SpecError, OSError) as e:
            return f"unavailable: {e}"

    @classmethod
    def VALIDATE_INPUTS(cls, clip=None):
        return True  # a clip added to the input folder after the page loaded is checked when it runs

    def load(self, clip, path_or_key, start, end, step, fps, naming, subject=None, custom_map=""):
        height = float((subject or {}).get("height", 1.75))
        options = dict(height=height, start=int(start), end=int(end), step=int(step), fps=float(fps),
                       naming=naming, custom_map=custom_map or "")
        try:
            kind, where = _source(clip, path_or_key)
            if kind == "key":
                from pose_factory import settings as settings_mod

                poses, report = clip_mod.load_clip_from_storage(settings_mod.make_storage(get_settings()), where,
                                                                **options)
            else:
                poses, report = clip_mod.load_clip(where, **options)
        except SpecError as e:
            # the motion room names a widget or a file ('walk.bvh line 20', 'custom map.l_hip'),
            # never a JobSpec path: kept as it is (plain_error would make 'walk.bvh' 'walk bvh')
            raise SpecError(e.field, e.message, e.allowed) from None
        # the 3D viewer shows these poses after the run (pose_factory.viewer.remember)
        from pose_factory import viewer

        return {"ui": {"pose_factory_poses": [viewer.remember(poses)]}, "result": (poses, report)}


NODE_CLASS_MAPPINGS = {"PoseFactoryMotionClip": PoseFactoryMotionClip}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryMotionClip": "Motion Clip"}
