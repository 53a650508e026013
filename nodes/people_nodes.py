"""People: Custom Rig (a user's rigged humanoid as a subject, with its rig report) and Scene
(subjects placed on the floor, chained like Pose Prop's props, for Request Pose Batch).

A subject is a plain dict (POSE_FACTORY_SUBJECT): a mannequin {"type": "mannequin", ...}, a rig
{"type": "rig", "rig": {"file": path}, "bone_map", "height"} (pose_factory.rigs stores the file and
checks the rest when the batch is requested), or a scene {"type": "scene", "subjects": [person, ...]}
whose persons carry their "place" (when not the default) and their own "poses" (when linked).
"""
from __future__ import annotations

import os

from ._common import CATEGORY, get_settings, input_directory, input_files, plain_error
from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError
from pose_factory.parsing import loads_json
from pose_factory.validate import check_number

CAT = f"{CATEGORY}/spec"
MAX_PEOPLE = spec_mod.MAX_SUBJECTS
RIG_FORMATS = ("fbx", "glb", "gltf", "vrm", "blend")
RIG_EXTENSIONS = tuple(f".{f}" for f in RIG_FORMATS)
BONE_MAPS = ("auto", "mixamo", "rigify", "vrm", "custom")
NO_FILE = "(use path_or_key)"
STORED_PREFIX = "sha256:"  # path_or_key naming a rig already stored in the project: sha256:<64 hex>.<format>
CUSTOM_MAP_HELP = '{"joint": "bone"} or {"base": "mixamo", "joints": {"chest": "Spine1"}}'
PERSON_TYPES = ("mannequin", "rig")


# --- Custom Rig ------------------------------------------------------------------------------------
def input_rigs() -> list[str]:
    """The rig files (.fbx, .glb, .gltf, .vrm, .blend) in ComfyUI's input folder and its
    subfolders (3d/ among them), sorted."""
    return input_files(RIG_EXTENSIONS)


def _rig_format(path: str, widget: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in RIG_EXTENSIONS:
        raise SpecError(widget, f"{os.path.basename(path)[:80]!r} is not a rig file",
                        "a rigged humanoid in " + ", ".join(RIG_EXTENSIONS))
    return ext[1:]


def _stored_ref(text: str) -> dict:
    body = text[len(STORED_PREFIX):].strip()
    digest, _, fmt = body.partition(".")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or fmt not in RIG_FORMATS:
        raise SpecError("path_or_key", f"got {text[:90]!r}",
                        f"{STORED_PREFIX}<64 hexadecimal characters>.<{'|'.join(RIG_FORMATS)}> of a rig stored in "
                        "the project (uploads/rigs/), or a rig file's path on this machine")
    return {"sha256": digest, "format": fmt}


def rig_source(rig_file, path_or_key) -> dict:
    """The subject's "rig" of the widgets: {"file": absolute path} (path_or_key's path, else the
    input folder's file) or a stored rig's {"sha256", "format"}. SpecError names the widget."""
    text = (path_or_key or "").strip()
    if text.startswith(STORED_PREFIX):
        return _stored_ref(text)
    if text:
        _rig_format(text, "path_or_key")
        if not os.path.isfile(text):
            raise SpecError("path_or_key", f"no file at {text[:120]!r}",
                            "an existing rig file on this machine (the local backend), or "
                            f"{STORED_PREFIX}<sha256>.<format> of a stored one")
        return {"file": os.path.realpath(text)}
    root = input_directory()
    if not rig_file or rig_file == NO_FILE or root is None:
        raise SpecError("rig_file", "no rig chosen", "a rig file in ComfyUI's input folder (e.g. 3d/), or path_or_key")
    _rig_format(rig_file, "rig_file")
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root, rig_file))
    if os.path.commonpath([full, real_root]) != real_root or not os.path.isfile(full):
        raise SpecError("rig_file", f"no file {rig_file[:120]!r} in the input folder",
                        "a rig file in ComfyUI's input folder (press R to refresh the list)")
    return {"file": full}


def bone_map_value(bone_map, custom_map):
    """The subject's bone_map: a built-in name, or the custom map's JSON object (checked by the rig
    room: our joints, each to a bone name)."""
    from pose_factory import rigs

    if bone_map not in BONE_MAPS:
        raise SpecError("bone_map", f"got {str(bone_map)[:40]!r}", ", ".join(BONE_MAPS))
    if bone_map != "custom":
        return bone_map
    text = str(custom_map or "")
    if not text.strip():
        raise SpecError("custom_map", "empty, with bone_map custom", CUSTOM_MAP_HELP)
    data = loads_json(text, lambda message: SpecError("custom_map", message, CUSTOM_MAP_HELP))
    try:
        return rigs.normalize_bone_map(data, "custom_map")
    except SpecError as e:  # "custom_map.l_hip" -> "custom_map: l_hip: ..."
        inner = e.field[len("custom_map"):].lstrip(".")
        raise SpecError("custom_map", f"{inner}: {e.message}" if inner else e.message, e.allowed) from None


def rig_height(height):
    """"auto" (0: the file's own size) or metres 0.3..3.0."""
    try:
        h = float(height)
    except (TypeError, ValueError):
        raise SpecError("height", f"got {str(height)[:40]!r}", "0 (auto: the rig's own size) or 0.3 to 3.0 metres") \
            from None
    if h == 0:
        return "auto"
    if not 0.3 <= h <= 3.0:
        raise SpecError("height", f"got {h:g}", "0 (auto: the rig's own size) or 0.3 to 3.0 metres")
    return round(h, 4)


def rig_subject(rig_file, path_or_key, bone_map, custom_map, height) -> dict:
    """The Custom Rig's subject (its file not stored yet: Request Pose Batch stores it)."""
    return {"type": "rig", "rig": rig_source(rig_file, path_or_key), "bone_map": bone_map_value(bone_map, custom_map),
            "height": rig_height(height)}


def rig_report(subject: dict) -> str:
    """The rig report of the subject's file: Blender imports it in a worker-environment child with
    a time limit (pose_factory.rigs.inspect_file, as Motion Clip reads a BVH clip) and measures it:
    which joints were found, estimated or missing. The child writes beside the file it reads, so it
    reads a link to the file in a temporary folder of its own (removed after), never the input
    folder. A file Blender cannot read, with no armature or no mappable humanoid: SpecError."""
    import tempfile

    from pose_factory import rigs

    ref = subject["rig"]
    if "file" not in ref:
        return (f"stored rig {ref['sha256'][:12]}….{ref['format']}: its report comes with the batch (the manifest's "
                "rig_reports)")
    rigs.read_file(ref["file"], "rig_file")  # size cap and the format's bytes, before Blender sees it
    name = os.path.basename(ref["file"])
    with tempfile.TemporaryDirectory(prefix="pose_factory_rig_") as work:
        link = os.path.join(work, f"rig.{rigs.file_format(ref['file'])}")
        os.symlink(ref["file"], link)
        report = rigs.inspect_file(link, subject["bone_map"], subject["height"], name=name,
                                   python=get_settings().get("worker_python") or None)
    return rigs.report_text(report)


def _queue_check(check, *args):
    try:
        check(*args)
    except SpecError as e:
        return str(e)
    return True


class PoseFactoryCustomRig:
    DESCRIPTION = ("Your own rigged humanoid as the subject: an FBX, GLB/glTF, VRM (0.x or 1.0) or .blend file from "
                   "ComfyUI's input folder (e.g. input/3d/), or path_or_key: a path on this machine (local backend) or "
                   f"'{STORED_PREFIX}<hash>.<format>' of a rig already stored in the project (RunPod). bone_map: how "
                   "its bones name our joints: auto (recognised from the names), mixamo (with or without "
                   "'mixamorig:'), rigify (Blender's Rigify/metarig), vrm (the file's own humanoid table), or custom "
                   f"(custom_map JSON: {CUSTOM_MAP_HELP}). height: 0 = the file's own size, else the standing height "
                   "in metres it is scaled to. The report says which joints were found, estimated (face points from "
                   "the head) or missing. The file is stored in the project by its content when the batch is "
                   "requested. docs/rigs.md.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_SUBJECT", "STRING")
    RETURN_NAMES = ("subject", "report")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "rig_file": ([NO_FILE, *input_rigs()], {"tooltip": "A rig file in ComfyUI's input folder (and its "
                                                              "subfolders, e.g. 3d/): .fbx, .glb, .gltf, .vrm, .blend."}),
            "path_or_key": ("STRING", {"default": "", "tooltip": "Instead of rig_file: a rig file's path on this "
                                       f"machine, or '{STORED_PREFIX}<sha256>.<format>' of one stored in the project."}),
            "bone_map": (list(BONE_MAPS), {"default": "auto"}),
            "custom_map": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": f"bone_map custom: {CUSTOM_MAP_HELP}"}),
            "height": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 3.0, "step": 0.01,
                                 "tooltip": "0 = auto (the file's own size); else 0.3 to 3.0 metres."}),
        }}

    @classmethod
    def IS_CHANGED(cls, rig_file=None, path_or_key="", **widgets):
        """The widgets and the rig file's size and time (a file replaced under the same name is read
        again, its report made again); never an exception."""
        try:
            ref = rig_source(rig_file, path_or_key)
            st = os.stat(ref["file"]) if "file" in ref else None
            where = f"{ref['file']}:{st.st_size}:{st.st_mtime_ns}" if st else ref["sha256"]
        except (SpecError, OSError) as e:
            where = f"unavailable: {e}"
        return f"{where}|{sorted(widgets.items())}"

    @classmethod
    def VALIDATE_INPUTS(cls, path_or_key=None, custom_map=None):
        """Queue-time errors: a path that is no rig file, a stored key that is malformed, a custom
        map that is no JSON object of our joints. ComfyUI shows the message on every input named
        here, so it names its widget. rig_file is a list ComfyUI checks itself (server-side, with
        the files there now), height its range (0..3; below 0.3 but not 0 is refused when it runs)."""
        for check, value in ((lambda v: rig_source(NO_FILE, v) if str(v).strip() else None, path_or_key),
                             (lambda v: bone_map_value("custom", v) if str(v).strip() else None, custom_map)):
            if value is not None:
                result = _queue_check(check, value)
                if result is not True:
                    return result
        return True

    def make(self, rig_file, path_or_key, bone_map, custom_map, height):
        try:
            subject = rig_subject(rig_file, path_or_key, bone_map, custom_map, height)
        except SpecError as e:
            raise SpecError(e.field, e.message, e.allowed) from None
        return (subject, rig_report(subject))


# --- Scene -----------------------------------------------------------------------------------------
def _person(subject) -> dict:
    if not isinstance(subject, dict) or subject.get("type", "mannequin") not in PERSON_TYPES:
        got = "a Scene" if isinstance(subject, dict) and subject.get("type") == "scene" else "something else"
        raise SpecError("subject", f"got {got}", "a Mannequin or Custom Rig subject (chain Scene nodes through "
                                                 "their scene input)")
    return dict(subject)


def scene_add(subject, position_x=0.0, position_y=0.0, facing=0.0, poses=None, scene=None) -> dict:
    """scene's people plus this one, placed; SpecError names the input."""
    person = _person(subject)
    before = []
    if scene is not None:
        if not isinstance(scene, dict) or scene.get("type") != "scene":
            raise SpecError("scene", "got a single subject", "the output of another Scene node")
        before = list(scene["subjects"])
    if len(before) >= MAX_PEOPLE:
        raise SpecError("scene", f"got {len(before)} people already", f"at most {MAX_PEOPLE} people in one scene")
    x = check_number(position_x, "position_x", -50, 50, " m")
    y = check_number(position_y, "position_y", -50, 50, " m")
    f = check_number(facing, "facing", -360, 360, " degrees")
    if (x, y, f) != (0, 0, 0):  # the default place is not written: a scene of one keeps its batch id
        person["place"] = {"position": [x, y], "facing": f}
    if poses:
        if len(poses) > spec_mod.MAX_POSES:
            raise SpecError("poses", f"got {len(poses)} poses", f"1 to {spec_mod.MAX_POSES}")
        person["poses"] = list(poses)
    return {"type": "scene", "subjects": before + [person]}


class PoseFactoryScene:
    DESCRIPTION = ("Puts a subject (Mannequin or Custom Rig) in a scene of several people, for Request Pose Batch's "
                   "subject: its place on the floor (position_x, position_y in metres; facing in degrees, 0 = facing "
                   "-Y as the mannequin does, 90 = turned to its left) and, optionally, its own poses (else it takes "
                   f"Request Pose Batch's poses). Chain up to {MAX_PEOPLE} through the scene input: the first Scene "
                   "node's subject is person 0 in the keypoints, the instance map and the loaders' person choice.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_SUBJECT",)
    RETURN_NAMES = ("scene",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "subject": ("POSE_FACTORY_SUBJECT", {"tooltip": "A Mannequin or a Custom Rig."}),
            "position_x": ("FLOAT", {"default": 0.0, "min": -50.0, "max": 50.0, "step": 0.01,
                                     "tooltip": "Metres on the floor; +X is the mannequin's left."}),
            "position_y": ("FLOAT", {"default": 0.0, "min": -50.0, "max": 50.0, "step": 0.01,
                                     "tooltip": "Metres on the floor; -Y is towards the default camera."}),
            "facing": ("FLOAT", {"default": 0.0, "min": -360.0, "max": 360.0, "step": 1.0,
                                 "tooltip": "Degrees about the vertical: 0 faces -Y, 90 turns the person to its left."}),
        }, "optional": {
            "poses": ("POSE_FACTORY_POSES", {"tooltip": "This person's poses; unlinked: Request Pose Batch's poses."}),
            "scene": ("POSE_FACTORY_SUBJECT", {"tooltip": "Another Scene node's people, before this one."}),
        }}

    def make(self, subject, position_x, position_y, facing, poses=None, scene=None):
        try:
            return (scene_add(subject, position_x, position_y, facing, poses, scene),)
        except SpecError as e:
            raise plain_error(e, e.field) from None


NODE_CLASS_MAPPINGS = {"PoseFactoryCustomRig": PoseFactoryCustomRig, "PoseFactoryScene": PoseFactoryScene}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryCustomRig": "Custom Rig", "PoseFactoryScene": "Scene"}
