"""Spec nodes: the pieces of a JobSpec (subject, poses, cameras) as plain JSON-able values,
each checked where it is made so an error points at the right node."""
from __future__ import annotations

import json

from ._common import CATEGORY
from pose_factory import poses as poses_mod
from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError
from pose_factory.parsing import loads_json

CAT = f"{CATEGORY}/spec"
HANDS_DEFAULT = "preset default"


class PoseFactoryMannequin:
    DESCRIPTION = "The procedural mannequin a batch renders: its height in metres and its build."
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
        }}

    def make(self, height, build):
        subject = {"type": "mannequin", "height": float(height), "build": build}
        spec_mod.normalize_spec({"subjects": [dict(subject, poses=["rest"])]})  # refuses a bad value here
        return (subject,)


class PoseFactoryPosePreset:
    DESCRIPTION = ("One pose (one frame) from the 30 presets, optionally mirrored left/right, with a hand shape "
                   "for both hands ('preset default' keeps the preset's own).")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_POSES",)
    RETURN_NAMES = ("poses",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "preset": (list(poses_mod.PRESETS), {"default": "a_pose"}),
            "mirror": ("BOOLEAN", {"default": False, "tooltip": "Swap left and right."}),
            "hands": ([HANDS_DEFAULT, *poses_mod.HAND_SHAPES], {"default": HANDS_DEFAULT}),
        }}

    def make(self, preset, mirror, hands):
        entry = {"preset": preset, "mirror": bool(mirror)}
        if hands != HANDS_DEFAULT:
            entry["hands"] = hands
        poses_mod.normalize_pose_entry(entry, "pose")
        return ([entry],)


class PoseFactoryPoseFromJSON:
    DESCRIPTION = ("One pose from explicit joint rotations in degrees, on top of a preset: JSON "
                   '{"joint": {"dof": degrees}}, e.g. {"l_elbow": {"flex": 90}, "root": {"yaw": 30}}; or a whole '
                   'pose object {"preset", "mirror", "hands", "joints", "offset", "grounded"}. A rotation beyond '
                   "a joint's limit is refused with the joint and its limits (docs/poses.md).")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_POSES",)
    RETURN_NAMES = ("poses",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "joints": ("STRING", {"multiline": True, "default": '{"l_elbow": {"flex": 90}, "root": {"yaw": 30}}'}),
            "preset": (list(poses_mod.PRESETS), {"default": "rest",
                                                 "tooltip": "The pose the rotations apply on top of."}),
        }}

    def make(self, joints, preset):
        text = joints if isinstance(joints, str) else json.dumps(joints)
        data = loads_json(text, lambda message: SpecError("joints", message, '{"joint": {"dof": degrees}}')) \
            if text.strip() else {}
        if not isinstance(data, dict):
            raise SpecError("joints", f"got a JSON {type(data).__name__}", '{"joint": {"dof": degrees}}')
        if data and set(data) <= set(poses_mod.ENTRY_KEYS):
            entry = dict(data)  # a whole pose object
            entry.setdefault("preset", preset)
        else:
            entry = {"preset": preset, "joints": data}
        # refuses a bad rotation naming it, e.g. subjects[0].poses[0].joints.l_elbow.flex
        spec_mod.normalize_spec({"subjects": [{"poses": [entry]}]})
        return ([entry],)


class PoseFactoryPoseList:
    DESCRIPTION = "Joins pose lists in order: each pose is one frame of the batch."
    CATEGORY = CAT
    FUNCTION = "join"
    RETURN_TYPES = ("POSE_FACTORY_POSES",)
    RETURN_NAMES = ("poses",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"poses_1": ("POSE_FACTORY_POSES",)},
                "optional": {f"poses_{i}": ("POSE_FACTORY_POSES",) for i in range(2, 9)}}

    def join(self, poses_1, **more):
        out = list(poses_1)
        for i in range(2, 9):
            extra = more.get(f"poses_{i}")
            if extra:
                out.extend(extra)
        if len(out) > spec_mod.MAX_POSES:
            raise SpecError("poses", f"got {len(out)} poses", f"1 to {spec_mod.MAX_POSES}")
        return (out,)


class PoseFactoryCameraOrbit:
    DESCRIPTION = ("Cameras on an orbit around the subject: views evenly spaced in azimuth (0 looks at the "
                   "subject's front, 90 at its left side), all at one elevation. distance 0 = auto: the whole "
                   "subject, over every frame, fits the frame.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_CAMERAS",)
    RETURN_NAMES = ("cameras",)

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
        }}

    def make(self, views, elevation, distance, focal_length, orthographic, roll, start_azimuth):
        cams = {"type": "orbit", "views": int(views), "elevation": float(elevation),
                "distance": "auto" if float(distance) == 0 else float(distance),
                "focal_length": float(focal_length), "orthographic": bool(orthographic), "roll": float(roll),
                "start_azimuth": float(start_azimuth)}
        spec_mod.normalize_spec({"cameras": cams, "subjects": [{"poses": ["rest"]}]})
        return (cams,)


NODE_CLASS_MAPPINGS = {
    "PoseFactoryMannequin": PoseFactoryMannequin,
    "PoseFactoryPosePreset": PoseFactoryPosePreset,
    "PoseFactoryPoseFromJSON": PoseFactoryPoseFromJSON,
    "PoseFactoryPoseList": PoseFactoryPoseList,
    "PoseFactoryCameraOrbit": PoseFactoryCameraOrbit,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PoseFactoryMannequin": "Mannequin (3D Pose Factory)",
    "PoseFactoryPosePreset": "Pose Preset (3D Pose Factory)",
    "PoseFactoryPoseFromJSON": "Pose from JSON (3D Pose Factory)",
    "PoseFactoryPoseList": "Pose List (3D Pose Factory)",
    "PoseFactoryCameraOrbit": "Camera Orbit (3D Pose Factory)",
}
