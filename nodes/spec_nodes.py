"""Spec nodes: the pieces of a JobSpec (subject, poses, cameras) as plain JSON-able values,
each checked where it is made so an error points at the right node.

Each node checks its widgets twice with one function: in VALIDATE_INPUTS, which ComfyUI calls when
the prompt is queued (so it outlines the node before anything runs), and when it runs (a value that
came by a link). Errors name the widget and what is allowed in the node's own words
(``plain_error``), never a JobSpec path such as ``subjects[0].poses[0]...``. ComfyUI skips its own
range and list checks for an input VALIDATE_INPUTS names, so each names only the widgets its check
covers in full, and a linked input arrives as None (nothing to check at queue time).
"""
from __future__ import annotations

import json

from ._common import CATEGORY, plain_error
from pose_factory.render import poses as poses_mod
from pose_factory.render import shape as shape_mod
from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError
from pose_factory.motion import sequence
from pose_factory.parsing import loads_json
from pose_factory.viewer.load3d import camera_from_load3d

CAT = f"{CATEGORY}/spec"
HANDS_DEFAULT = "preset default"
POSE_LIST_SLOTS = 64  # Pose List inputs; web/js/pose_list.js shows one empty slot after the last linked one
SEQUENCE_HELP = ("one pose per line: preset [mirror] [hands=shape] [frames=N] [ease=linear|in_out]; "
                 "# starts a comment")


def _checked(widget: str | None, check, *args):
    """check(*args); a SpecError comes back in the widget's words (None: in its own field's)."""
    try:
        return check(*args)
    except SpecError as e:
        raise plain_error(e, widget) from None


def _queue_check(widget: str, check, value):
    """VALIDATE_INPUTS: True, or the message (ComfyUI shows it after the widget's name). A linked
    input is None at queue time: it is checked when the node runs."""
    if value is None:
        return True
    try:
        _checked(widget, check, value)
    except SpecError as e:
        return e.message  # plain_error's message carries what is allowed
    return True


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError("", f"got {str(value)[:40]!r}", "a number") from None


def _mannequin(height, build="average") -> dict:
    subject = {"type": "mannequin", "height": _float(height), "build": build}
    spec_mod.normalize_spec({"subjects": [dict(subject, poses=["rest"])]})  # refuses a bad value here
    return subject


def _shape_widgets() -> dict:
    """The Mannequin's body-shape widgets after `build` (shape.WIDGET_KEYS): a preset, and numbers
    that override it, 0 keeping the preset's (docs/poses.md, "Body shapes")."""
    out = {"proportions": (list(shape_mod.PRESETS), {
        "default": "adult", "tooltip": "Body proportions: " + "; ".join(
            f"{k}: {v}" for k, v in shape_mod.PRESET_NOTES.items()) + ". The numbers below override them."})}
    for key, (default, lo, hi, what) in shape_mod.PARAMS.items():
        out[key] = ("FLOAT", {"default": 0.0, "min": 0.0, "max": hi, "step": 0.1 if key == "head_ratio" else 0.01,
                              "tooltip": f"{what}: {lo:g} to {hi:g} (adult {default:g}); 0 = the proportions' own."})
    return out


def _preset_entry(preset, mirror=False, hands=HANDS_DEFAULT) -> dict:
    entry = {"preset": preset, "mirror": bool(mirror)}
    if hands != HANDS_DEFAULT:
        entry["hands"] = hands
    poses_mod.normalize_pose_entry(entry, "pose")
    return entry


def _json_entry(joints, preset="rest") -> dict:
    text = joints if isinstance(joints, str) else json.dumps(joints)
    data = loads_json(text, lambda message: SpecError("pose", message, '{"joint": {"dof": degrees}}')) \
        if text.strip() else {}
    if not isinstance(data, dict):
        raise SpecError("pose", f"got a JSON {type(data).__name__}", '{"joint": {"dof": degrees}}')
    if data and set(data) <= set(poses_mod.ENTRY_KEYS):
        entry = dict(data)  # a whole pose object
        entry.setdefault("preset", preset)
    else:
        entry = {"preset": preset, "joints": data}
    poses_mod.normalize_pose_entry(entry, "pose")  # refuses a bad rotation naming the joint and its limits
    return entry


def parse_keys(text) -> list[dict]:
    """The Pose Sequence text as keys: one pose per line, 'preset [mirror] [hands=shape] [frames=N]
    [ease=linear|in_out]', blank lines and '#' comments skipped. SpecError names the line."""
    keys = []
    for n, line in enumerate(str(text).splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"line {n}"
        entry, key = {"preset": words[0]}, {"frames": 1, "ease": "linear"}
        for word in words[1:]:
            name, eq, value = word.partition("=")
            if word == "mirror":
                entry["mirror"] = True
            elif name == "hands" and eq and value:
                entry["hands"] = value
            elif name == "frames" and eq:
                if not value.isdigit() or not 1 <= int(value) <= spec_mod.MAX_POSES:
                    raise SpecError(f"{where} frames", f"got {value[:20]!r}", f"an integer from 1 to {spec_mod.MAX_POSES}")
                key["frames"] = int(value)
            elif name == "ease" and eq:
                if value not in sequence.EASES:
                    raise SpecError(f"{where} ease", f"got {value[:20]!r}", ", ".join(sequence.EASES))
                key["ease"] = value
            else:
                raise SpecError(where, f"unknown option {word[:40]!r}",
                                f"mirror, hands=<{'|'.join(poses_mod.HAND_SHAPES)}>, frames=<1..{spec_mod.MAX_POSES}>, "
                                f"ease=<{'|'.join(sequence.EASES)}>")
        poses_mod.normalize_pose_entry(entry, where)
        keys.append({"pose": entry, **key})
    if not 1 <= len(keys) <= spec_mod.MAX_POSES:
        raise SpecError("", f"got {len(keys)} poses", f"1 to {spec_mod.MAX_POSES} lines, {SEQUENCE_HELP}")
    total = sum(k["frames"] for k in keys)
    if total > spec_mod.MAX_POSES:
        raise SpecError("", f"the lines make {total} frames", f"at most {spec_mod.MAX_POSES} (fewer frames=)")
    return keys


def parse_sequence(text, path="none", amount=0.0) -> list[dict]:
    """The Pose Sequence's poses: its keys (parse_keys) with their in-betweens (quaternion slerp,
    eased) and the root path; a key comes out as written."""
    keys = parse_keys(text)
    if path not in sequence.PATHS:
        raise SpecError("path", f"got {str(path)[:40]!r}", ", ".join(sequence.PATHS))
    amount = _float(amount)
    limit = poses_mod.MAX_OFFSET if path == "walk_forward" else 3600.0
    if not -limit <= amount <= limit:
        raise SpecError("path_amount", f"got {amount:g}", f"-{limit:g} to {limit:g} "
                        f"({'metres' if path == 'walk_forward' else 'degrees'})")
    return sequence.expand(keys, path, amount)[0]


def _distance(distance) -> float:
    d = _float(distance)
    if d != 0 and not 0.5 <= d <= 100:
        raise SpecError("", f"got {d:g}", "0 (auto: the subject fits the frame) or 0.5 to 100 metres")
    return d


class PoseFactoryMannequin:
    DESCRIPTION = ("The procedural mannequin a batch renders: its height in metres, its build and its body "
                   "proportions (child to adult to heroic; docs/poses.md, Body shapes).")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_SUBJECT",)
    RETURN_NAMES = ("subject",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "height": ("FLOAT", {"default": 1.75, "min": 1.2, "max": 2.2, "step": 0.01,
                                 "tooltip": "Standing height in metres."}),
            "build": (["slim", "average", "heavy"], {"default": "average"}),
        }, "optional": _shape_widgets()}  # optional: an API prompt written before them still validates

    @classmethod
    def VALIDATE_INPUTS(cls, height=None, proportions=None, head_ratio=None, shoulder_width=None, hip_width=None,
                        arm_length=None, leg_length=None):
        checked = _queue_check("height", _mannequin, height)
        if checked is not True:
            return checked
        # the shape widgets in full (shape.from_widgets); a linked one (None) counts as its default here
        try:
            _checked(None, shape_mod.from_widgets, "adult" if proportions is None else proportions,
                     *(0.0 if v is None else v for v in (head_ratio, shoulder_width, hip_width, arm_length, leg_length)))
        except SpecError as e:
            return f"{e.field}: {e.message}"
        return True

    def make(self, height, build, proportions="adult", head_ratio=0.0, shoulder_width=0.0, hip_width=0.0,
             arm_length=0.0, leg_length=0.0):
        subject = _checked("mannequin", _mannequin, height, build)
        shape = _checked(None, shape_mod.from_widgets, proportions, head_ratio, shoulder_width, hip_width,
                         arm_length, leg_length)  # None: the default body
        return (subject if shape is None else dict(subject, shape=shape),)


class _PosesNode:
    """What every node that makes a pose list shares: one POSE_FACTORY_POSES output."""
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_POSES",)
    RETURN_NAMES = ("poses",)


class PoseFactoryPosePreset(_PosesNode):
    DESCRIPTION = ("One pose (one frame) from the 30 presets, optionally mirrored left/right, with a hand shape "
                   "for both hands ('preset default' keeps the preset's own).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "preset": (list(poses_mod.PRESETS), {"default": "a_pose"}),
            "mirror": ("BOOLEAN", {"default": False, "tooltip": "Swap left and right."}),
            "hands": ([HANDS_DEFAULT, *poses_mod.HAND_SHAPES], {"default": HANDS_DEFAULT}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, preset=None):
        return _queue_check("preset", _preset_entry, preset)

    def make(self, preset, mirror, hands):
        return ([_checked("pose", _preset_entry, preset, mirror, hands)],)


class PoseFactoryPoseFromJSON(_PosesNode):
    DESCRIPTION = ("One pose from explicit joint rotations in degrees, on top of a preset: JSON "
                   '{"joint": {"dof": degrees}}, e.g. {"l_elbow": {"flex": 90}, "root": {"yaw": 30}}; or a whole '
                   'pose object {"preset", "mirror", "hands", "joints", "offset", "grounded"}. A rotation beyond '
                   "a joint's limit is refused with the joint and its limits (docs/poses.md).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "joints": ("STRING", {"multiline": True, "default": '{"l_elbow": {"flex": 90}, "root": {"yaw": 30}}'}),
            "preset": (list(poses_mod.PRESETS), {"default": "rest",
                                                 "tooltip": "The pose the rotations apply on top of."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, joints=None):
        # the preset widget is ComfyUI's to check (a list); a whole pose object names its own
        return _queue_check("joints", _json_entry, joints)

    def make(self, joints, preset):
        return ([_checked("joints", _json_entry, joints, preset)],)


class PoseFactoryPoseSequence(_PosesNode):
    DESCRIPTION = ("Poses from a text, one per line: a preset name, then 'mirror', 'hands=<shape>' (flat, open, "
                   "relaxed, fist, point, peace, thumbs_up, grip), 'frames=N' (the line's pose, then N-1 frames "
                   "turning towards the next line's pose: each joint's rotation slerped; on the last line the pose "
                   "is held) and 'ease=linear|in_out'; blank lines and '# comments' are skipped. "
                   "E.g. 'walk_left_step frames=6 ease=in_out'. path moves the root over the whole sequence: "
                   "walk_forward (path_amount metres, the way the mannequin faces) or turn_in_place (path_amount "
                   "degrees, to its left). docs/motion.md.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "poses": ("STRING", {"multiline": True, "default": "a_pose\nwaving hands=open\nwaving mirror\npointing",
                                 "tooltip": f"{SEQUENCE_HELP}. Presets: {', '.join(poses_mod.PRESETS)}."}),
        }, "optional": {
            "path": (list(sequence.PATHS), {"default": "none", "tooltip": "A root path over the whole sequence."}),
            "path_amount": ("FLOAT", {"default": 0.0, "min": -3600.0, "max": 3600.0, "step": 0.1,
                                      "tooltip": "walk_forward: metres (at most 5); turn_in_place: degrees."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, poses=None):
        return _queue_check("poses", parse_keys, poses)

    def make(self, poses, path="none", path_amount=0.0):
        return (_checked("poses", parse_sequence, poses, path, path_amount),)


class PoseFactoryPoseList(_PosesNode):
    DESCRIPTION = ("Joins pose lists in order: each pose is one frame of the batch. A new input appears when the "
                   f"last one is linked (up to {POSE_LIST_SLOTS}).")
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"poses_1": ("POSE_FACTORY_POSES",)},
                "optional": {f"poses_{i}": ("POSE_FACTORY_POSES",) for i in range(2, POSE_LIST_SLOTS + 1)}}

    def join(self, poses_1, **more):
        out = list(poses_1)
        for i in range(2, POSE_LIST_SLOTS + 1):
            extra = more.get(f"poses_{i}")
            if extra:
                out.extend(extra)
        if len(out) > spec_mod.MAX_POSES:
            raise SpecError("poses", f"got {len(out)} poses", f"1 to {spec_mod.MAX_POSES}")
        return (out,)


class _CamerasNode:
    """What every node that makes a camera rig shares: one POSE_FACTORY_CAMERAS output."""
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_CAMERAS",)
    RETURN_NAMES = ("cameras",)


class PoseFactoryCameraOrbit(_CamerasNode):
    DESCRIPTION = ("Cameras on an orbit around the subject: views evenly spaced in azimuth (0 looks at the "
                   "subject's front, 90 at its left side), all at one elevation. distance 0 = auto: the whole "
                   "subject, over every frame, fits the frame. follow: the rig moves with the subject's root from "
                   "frame to frame (a walk stays in the middle of the frame).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "views": ("INT", {"default": 4, "min": 1, "max": spec_mod.MAX_VIEWS}),
            "elevation": ("FLOAT", {"default": 10.0, "min": -89.0, "max": 89.0, "step": 0.5,
                                    "tooltip": "Degrees above the subject's centre."}),
            "distance": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                   "tooltip": "Metres from the subject, at least 0.5; 0 = auto (fit the subject)."}),
            "focal_length": ("FLOAT", {"default": 50.0, "min": 5.0, "max": 300.0, "step": 1.0, "tooltip": "mm"}),
            "orthographic": ("BOOLEAN", {"default": False}),
            "roll": ("FLOAT", {"default": 0.0, "min": -180.0, "max": 180.0, "step": 1.0}),
            "start_azimuth": ("FLOAT", {"default": 0.0, "min": -360.0, "max": 360.0, "step": 1.0}),
        }, "optional": {
            "follow": ("BOOLEAN", {"default": False, "tooltip": "Move the cameras with the subject's root "
                                   "(horizontally) from frame to frame, e.g. for a walk; off: one fixed rig "
                                   "that sees every frame."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, distance=None):
        return _queue_check("distance", _distance, distance)

    def make(self, views, elevation, distance, focal_length, orthographic, roll, start_azimuth, follow=False):
        distance = _checked("distance", _distance, distance)
        cams = {"type": "orbit", "views": int(views), "elevation": float(elevation),
                "distance": "auto" if float(distance) == 0 else float(distance),
                "focal_length": float(focal_length), "orthographic": bool(orthographic), "roll": float(roll),
                "start_azimuth": float(start_azimuth), **({"follow": True} if follow else {})}
        _checked("cameras", spec_mod.normalize_spec, {"cameras": cams, "subjects": [{"poses": ["rest"]}]})
        return (cams,)


CAMERA_LIST_HELP = ('a JSON list of cameras [{"location": [x, y, z], "look_at": [x, y, z], "focal_length": mm, '
                    '"roll": deg, "orthographic": false, "ortho_scale": m, "shift": [x, y], "sensor_width": mm}]; '
                    "metres, world Z up, the subject facing -Y")
DEFAULT_CAMERA_LIST = '[{"location": [0.0, -4.0, 1.0], "look_at": [0.0, 0.0, 0.9], "focal_length": 50.0}]'


def _listed(cameras: list, append_to=None) -> dict:
    """A listed camera rig (spec type "list"): append_to's cameras, then these; checked by the spec."""
    before = []
    if append_to is not None:
        if append_to.get("type") != "list":
            raise SpecError("append_to", "got an orbit", "a camera list (Camera List or Camera From Load 3D)")
        before = list(append_to["cameras"])
    cams = {"type": "list", "cameras": before + list(cameras)}
    return spec_mod.normalize_spec({"cameras": cams, "subjects": [{"poses": ["rest"]}]})["cameras"]


def _camera_list(text, append_to=None) -> dict:
    data = loads_json(text, lambda message: SpecError("", message, CAMERA_LIST_HELP)) if str(text).strip() else None
    if not isinstance(data, list) or not data:
        raise SpecError("", f"got {type(data).__name__ if data is not None else 'nothing'}", CAMERA_LIST_HELP)
    return _listed(data, append_to)


class PoseFactoryCameraList(_CamerasNode):
    DESCRIPTION = ("Cameras placed one by one: each has a location and a point it looks at (metres, world Z up, the "
                   "subject facing -Y), a focal length in mm (or orthographic with ortho_scale), roll and shift. The 3D "
                   "viewer's 'add this view' appends its current view here. append_to: cameras that come first "
                   "(another Camera List or Camera From Load 3D).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"cameras": ("STRING", {"multiline": True, "default": DEFAULT_CAMERA_LIST,
                                                    "tooltip": CAMERA_LIST_HELP})},
                "optional": {"append_to": ("POSE_FACTORY_CAMERAS",)}}

    @classmethod
    def VALIDATE_INPUTS(cls, cameras=None):
        return _queue_check("cameras", _camera_list, cameras)

    def make(self, cameras, append_to=None):
        return (_checked("cameras", _camera_list, cameras, append_to),)


class PoseFactoryCameraFromLoad3D(_CamerasNode):
    DESCRIPTION = ("A camera framed in ComfyUI's Load 3D (its camera_info output, LOAD3D_CAMERA: three.js, Y up) as "
                   "our camera (Z up): position, target, zoom, perspective (vertical fov) or orthographic (frustum), "
                   "roll from its quaternion. width and height: the size you render at (as on Request Pose Batch), "
                   "so the picture matches three.js's at that size. append_to: cameras that come first.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "camera_info": ("LOAD3D_CAMERA",),
            "width": ("INT", {"default": 512, "min": 64, "max": spec_mod.MAX_SIZE, "step": 8,
                              "tooltip": "The render width (Request Pose Batch's)."}),
            "height": ("INT", {"default": 512, "min": 64, "max": spec_mod.MAX_SIZE, "step": 8,
                               "tooltip": "The render height (Request Pose Batch's)."}),
        }, "optional": {"append_to": ("POSE_FACTORY_CAMERAS",)}}

    def make(self, camera_info, width, height, append_to=None):
        cam = _checked(None, camera_from_load3d, camera_info, int(width), int(height))  # names camera_info's field
        return (_checked("camera_info", _listed, [cam], append_to),)


NODE_CLASS_MAPPINGS = {
    "PoseFactoryMannequin": PoseFactoryMannequin,
    "PoseFactoryPosePreset": PoseFactoryPosePreset,
    "PoseFactoryPoseFromJSON": PoseFactoryPoseFromJSON,
    "PoseFactoryPoseSequence": PoseFactoryPoseSequence,
    "PoseFactoryPoseList": PoseFactoryPoseList,
    "PoseFactoryCameraOrbit": PoseFactoryCameraOrbit,
    "PoseFactoryCameraList": PoseFactoryCameraList,
    "PoseFactoryCameraFromLoad3D": PoseFactoryCameraFromLoad3D,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PoseFactoryMannequin": "Mannequin",
    "PoseFactoryPosePreset": "Pose Preset",
    "PoseFactoryPoseFromJSON": "Pose from JSON",
    "PoseFactoryPoseSequence": "Pose Sequence",
    "PoseFactoryPoseList": "Pose List",
    "PoseFactoryCameraOrbit": "Camera Orbit",
    "PoseFactoryCameraList": "Camera List",
    "PoseFactoryCameraFromLoad3D": "Camera From Load 3D",
}
