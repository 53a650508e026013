"""Bone-name maps from common BVH skeletons to the mannequin's joints (rig.py).

A map is {mannequin joint: source bone name}. Names match without regard to case, and a
namespace prefix ('mixamorig:', 'mixamorig1:', 'Character1:') is ignored. "auto" picks the
built-in map that names most of the clip's bones. A custom map is JSON, either a whole map
{"l_elbow": "LeftForeArm", ...} or {"base": "<built-in>", "joints": {...}} to change a few.
Source bones no map names (clavicles, extra spine and neck bones, twist bones, end bones) are
listed in the retarget report: their rotation still reaches the mapped bones below them, since
retargeting works with world rotations.
"""
from __future__ import annotations

import re

from ..render import rig
from ..errors import SpecError
from ..parsing import loads_json


def _sided(centre: dict, left: dict, right_of) -> dict:
    out = dict(centre)
    for joint, name in left.items():
        out[f"l_{joint}"] = name
        out[f"r_{joint}"] = right_of(name)
    return out


_LIMBS = {"shoulder": "LeftArm", "elbow": "LeftForeArm", "wrist": "LeftHand",
          "hip": "LeftUpLeg", "knee": "LeftLeg", "ankle": "LeftFoot", "toe": "LeftToeBase"}
_MIXAMO_FINGERS = {f"{f}{i}": f"LeftHand{f.capitalize()}{i}" for f in rig.FINGERS for i in (1, 2, 3, 4)}

MAPS = {
    # CMU mocap as BVH (the cgspeed / Bandai-Namco style hierarchy): Hips, LHipJoint, LeftUpLeg ...,
    # LowerBack, Spine, Spine1, Neck, Neck1, Head, LeftShoulder, LeftArm, LeftForeArm, LeftHand
    "cmu": _sided({"root": "Hips", "spine": "LowerBack", "chest": "Spine1", "neck": "Neck", "head": "Head"},
                  _LIMBS, lambda n: n.replace("Left", "Right")),
    # Mixamo (with or without the 'mixamorig:' namespace): Hips, Spine, Spine1, Spine2, Neck, Head,
    # LeftShoulder (clavicle), LeftArm ..., LeftHandThumb1..4, LeftHandIndex1..4 ...
    "mixamo": _sided({"root": "Hips", "spine": "Spine", "chest": "Spine2", "neck": "Neck", "head": "Head"},
                     {**_LIMBS, **_MIXAMO_FINGERS}, lambda n: n.replace("Left", "Right")),
    # The SMPL 22-joint body ComfyUI's motion/body nodes and most text-to-motion models write:
    # pelvis, left_hip, spine1, left_knee, spine2, left_ankle, spine3, left_foot, neck, left_collar,
    # head, left_shoulder, left_elbow, left_wrist (and right_*)
    "smpl": _sided({"root": "pelvis", "spine": "spine1", "chest": "spine3", "neck": "neck", "head": "head"},
                   {"shoulder": "left_shoulder", "elbow": "left_elbow", "wrist": "left_wrist", "hip": "left_hip",
                    "knee": "left_knee", "ankle": "left_ankle", "toe": "left_foot"},
                   lambda n: n.replace("left_", "right_")),
    # the mannequin's own joint names (a clip exported from this pack's rig)
    "mannequin": {n: n for n in rig.JOINT_NAMES},
}
NAMINGS = ("auto", *MAPS, "custom")
_RIGIFY_FINGERS = {**{f"thumb{i}": f"thumb.0{i}.L" for i in (1, 2, 3)},
                   **{f"{f}{i}": f"f_{f}.0{i}.L" for f in rig.FINGERS[1:] for i in (1, 2, 3)}}
# Blender's Rigify metarig (a generated rig's deforming bones are the same names with 'DEF-'):
# spine (the hips), spine.001, spine.002 (our chest), spine.003 (the upper chest), spine.004 (neck), spine.005, spine.006 (head),
# shoulder.L (clavicle), upper_arm.L, forearm.L, hand.L, thigh.L, shin.L, foot.L, toe.L, thumb.01.L,
# f_index.01.L ... Characters (pose_factory/rigs) take it beside MAPS; a BVH clip never has these names.
RIGIFY = _sided({"root": "spine", "spine": "spine.001", "chest": "spine.002", "neck": "spine.004", "head": "spine.006"},
                {"shoulder": "upper_arm.L", "elbow": "forearm.L", "wrist": "hand.L", "hip": "thigh.L", "knee": "shin.L",
                 "ankle": "foot.L", "toe": "toe.L", **_RIGIFY_FINGERS}, lambda n: n[:-2] + ".R")
_MIXAMO_PREFIX = re.compile(r"^mixamorig\d*_", re.IGNORECASE)
REQUIRED = ("root", "l_hip", "r_hip")  # the clip's frame (up, left) and root motion come from these


def strip_namespace(name: str) -> str:
    """'mixamorig:Hips', 'mixamorig1:Hips', 'Character1:Hips' and 'mixamorig_Hips' (the colon some
    exporters turn into '_') are all 'Hips'."""
    return _MIXAMO_PREFIX.sub("", name.rsplit(":", 1)[-1])


def _key(name: str) -> str:
    return strip_namespace(name).lower()


def parse_custom(text: str, maps: dict = MAPS) -> dict:
    """A custom map from JSON: {joint: bone} or {"base": naming, "joints": {joint: bone}}."""
    def error(message):
        return SpecError("custom map", message, '{"joint": "bone name"} or {"base": "mixamo", "joints": {...}}')

    data = loads_json(text, error)
    if not isinstance(data, dict):
        raise error(f"got a JSON {type(data).__name__}")
    base = {}
    if "base" in data or "joints" in data:
        name = data.get("base", "mannequin")
        if name not in maps:
            raise SpecError("custom map.base", f"got {name!r}", "one of " + ", ".join(maps))
        base, data = dict(maps[name]), data.get("joints", {})
        if not isinstance(data, dict):
            raise error("'joints' is not an object")
    for joint, bone in data.items():
        if joint not in rig.JOINT_NAMES:
            raise SpecError(f"custom map.{joint}", f"unknown joint {joint!r}", "the mannequin's joints "
                            "(docs/poses.md): " + ", ".join(rig.JOINT_NAMES[:14]) + ", ...")
        if bone is None:
            base.pop(joint, None)
            continue
        if not isinstance(bone, str) or not bone:
            raise SpecError(f"custom map.{joint}", f"got {bone!r}", "a bone name of the clip, or null")
        base[joint] = bone
    return base


def resolve(bones: list, naming: str = "auto", custom: str = "", maps: dict = MAPS,
            what: str = "clip") -> tuple[str, dict, list]:
    """(naming used, {joint: index into bones}, unknown bone names) for a clip's bone names.
    maps: the built-in maps to choose from (a character's rig also takes RIGIFY)."""
    index = {}
    for i, b in enumerate(bones):
        index.setdefault(_key(b), i)

    def matched(m):
        return {j: index[_key(n)] for j, n in m.items() if _key(n) in index}

    if naming == "custom":
        used, found = "custom", matched(parse_custom(custom, maps))
    elif naming == "auto":
        def score(nm):  # the root and hips first, then the body's joints, then the fingers
            body = [j for j in nm[1] if j in MAPS["cmu"]]
            return all(j in nm[1] for j in REQUIRED), len(body), len(nm[1])
        used, found = max(((n, matched(m)) for n, m in maps.items()), key=score)
    elif naming in maps:
        used, found = naming, matched(maps[naming])
    else:
        raise SpecError("naming", f"got {naming!r}", "one of " + ", ".join(("auto", *maps, "custom")))
    missing = [j for j in REQUIRED if j not in found]
    if missing:
        raise SpecError("naming", f"the {used} map finds no bone for {', '.join(missing)} in this {what} "
                        f"(its bones: {', '.join(bones[:12])}{', ...' if len(bones) > 12 else ''})",
                        "another naming, or a custom map naming the root and both hips")
    taken = set(found.values())
    unknown = [b for i, b in enumerate(bones) if i not in taken]
    return used, found, unknown
