"""A character's bone map: which of its bones carries each of the mannequin's joints (rig.py).

Built-in maps (pose_factory/motion/names.py, shared with motion clips): Mixamo (with or without the
'mixamorig:' namespace, numbered or not), Rigify (the metarig's names, or a generated rig's 'DEF-'
deforming bones) and the others a BVH clip takes; "vrm" reads the humanoid table the file itself
holds (VRM 0.x ``extensions.VRM.humanoid.humanBones``, VRM 1.0 ``extensions.VRMC_vrm.humanoid.
humanBones``): its node indices name glTF nodes, whose names are the bones Blender's glTF importer
makes. Nothing is guessed for a VRM. "auto" takes the VRM table when the file has one, else the
built-in map naming most bones. A custom map is an object as names.parse_custom reads.
Besides the joints a map may name the eyes and the jaw (FACE_KEYS), which place face points.
"""
from __future__ import annotations

import json

from ..errors import SpecError
from ..motion import names
from ..render import rig
from ..validate import describe

RIG_MAPS = {"mixamo": names.MAPS["mixamo"], "rigify": names.RIGIFY,
            **{k: v for k, v in names.MAPS.items() if k != "mixamo"}}
BONE_MAPS = ("auto", "mixamo", "rigify", "vrm")  # the named maps a rig subject takes (or a custom object)
FACE_KEYS = ("l_eye", "r_eye", "jaw")
_FACE_BONES = {"mixamo": {"l_eye": "LeftEye", "r_eye": "RightEye"},
               "rigify": {"l_eye": "eye.L", "r_eye": "eye.R", "jaw": "jaw"}}


def _vrm_table() -> dict:
    """VRM humanBone name -> our joint (or face key), for both versions."""
    t = {"hips": "root", "spine": "spine", "chest": "chest", "upperChest": "chest", "neck": "neck", "head": "head",
         "leftEye": "l_eye", "rightEye": "r_eye", "jaw": "jaw"}
    for side, s in (("left", "l"), ("right", "r")):
        t.update({f"{side}UpperArm": f"{s}_shoulder", f"{side}LowerArm": f"{s}_elbow", f"{side}Hand": f"{s}_wrist",
                  f"{side}UpperLeg": f"{s}_hip", f"{side}LowerLeg": f"{s}_knee", f"{side}Foot": f"{s}_ankle",
                  f"{side}Toes": f"{s}_toe"})
        for f in ("Index", "Middle", "Ring", "Little"):
            ours = "pinky" if f == "Little" else f.lower()
            for part, i in (("Proximal", 1), ("Intermediate", 2), ("Distal", 3)):
                t[f"{side}{f}{part}"] = f"{s}_{ours}{i}"
        # the thumb: 1.0 names metacarpal/proximal/distal, 0.x proximal/intermediate/distal
    return t


VRM_BONES = _vrm_table()


def vrm_version(gltf: dict | None) -> str | None:
    ext = (gltf or {}).get("extensions") or {}
    return "1.0" if "VRMC_vrm" in ext else "0.x" if "VRM" in ext else None


def vrm_human_bones(gltf: dict) -> dict:
    """{VRM humanBone name: glTF node index} of a VRM 0.x or 1.0 file's JSON."""
    ext = gltf.get("extensions") or {}
    try:
        if "VRMC_vrm" in ext:
            table = ext["VRMC_vrm"]["humanoid"]["humanBones"]
            return {name: int(b["node"]) for name, b in table.items()}
        return {b["bone"]: int(b["node"]) for b in ext["VRM"]["humanoid"]["humanBones"]}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SpecError("rig", "a VRM whose humanoid table is broken", "a VRM 0.x or 1.0 file as its "
                        "specification writes it (humanoid.humanBones naming glTF nodes)") from None


def _vrm_joint(name: str, version: str) -> str | None:
    """Our joint for a VRM humanBone: 1.0 names the thumb metacarpal/proximal/distal, 0.x
    proximal/intermediate/distal (the same three bones)."""
    if "Thumb" in name:
        s = "l" if name.startswith("left") else "r"
        order = ("Metacarpal", "Proximal", "Distal") if version == "1.0" else ("Proximal", "Intermediate", "Distal")
        part = name.split("Thumb", 1)[1]
        return f"{s}_thumb{order.index(part) + 1}" if part in order else None
    return VRM_BONES.get(name)


def _vrm_map(bones: list, gltf: dict) -> dict:
    nodes = gltf.get("nodes") or []
    have = set(bones)
    found = {}
    version = vrm_version(gltf)
    for human, node in vrm_human_bones(gltf).items():
        ours = _vrm_joint(human, version)
        if ours is None or not 0 <= node < len(nodes) or not isinstance(nodes[node], dict):
            continue
        name = str(nodes[node].get("name") or f"node{node}")
        for candidate in (name, name.encode("utf-8")[:63].decode("utf-8", "ignore")):
            if candidate in have:
                if ours == "chest" and human == "upperChest" and "chest" in found:
                    break  # chest wins over upperChest (taken only without a chest)
                found[ours] = candidate
                break
    return found


def normalize_bone_map(v, field: str):
    """A subject's bone_map: one of BONE_MAPS, or a custom object (checked as names.parse_custom)."""
    if isinstance(v, str):
        if v not in BONE_MAPS:
            raise SpecError(field, f"got {describe(v)}", "one of " + ", ".join(BONE_MAPS) +
                            ', or a custom map {"joint": "bone"} / {"base": "mixamo", "joints": {...}}')
        return v
    if not isinstance(v, dict):
        raise SpecError(field, f"got {describe(v)}", "one of " + ", ".join(BONE_MAPS) + " or a custom map object")
    try:
        names.parse_custom(json.dumps(v), RIG_MAPS)
    except SpecError as e:
        raise SpecError(f"{field}{e.field[len('custom map'):]}", e.message, e.allowed) from None
    except (TypeError, ValueError):
        raise SpecError(field, "a custom map that is not JSON", '{"joint": "bone"}') from None
    return v


def _match_names(bones: list) -> list:
    """Bone names as the maps match them: a generated Rigify rig's deforming 'DEF-' bones stand for
    the metarig's names (its ORG-/MCH- and control bones are not matched)."""
    if any(b.startswith("DEF-") for b in bones):
        return [b[4:] if b.startswith("DEF-") else "\0" + b for b in bones]
    return list(bones)


def map_bones(bones: list, bone_map="auto", gltf: dict | None = None) -> tuple[str, dict, list]:
    """(map used, {joint or face key: bone name}, bones no map names) for a rig's bone names.
    SpecError when the map finds no root and hips (no humanoid to pose)."""
    allowed = "a humanoid rig whose hips and both thighs a bone map names (auto, mixamo, rigify, vrm or a custom map)"
    if bone_map == "vrm" or (bone_map == "auto" and vrm_version(gltf)):
        if not vrm_version(gltf):
            raise SpecError("bone_map", "vrm, but the file has no VRM humanoid table", "auto, mixamo, rigify or a custom map")
        used, found = "vrm", _vrm_map(bones, gltf)
        missing = [j for j in names.REQUIRED if j not in found]
        if missing:
            raise SpecError("rig", f"the VRM humanoid table names no bone of this rig for {', '.join(missing)}", allowed)
    else:
        custom = json.dumps(bone_map) if isinstance(bone_map, dict) else ""
        naming = "custom" if isinstance(bone_map, dict) else bone_map
        match = _match_names(bones)
        try:
            used, idx, _ = names.resolve(match, naming, custom, maps=RIG_MAPS, what="rig")
        except SpecError as e:
            raise SpecError("rig", e.message + f" (its bones: {', '.join(bones[:12])}{', ...' if len(bones) > 12 else ''})"
                            if "its bones" not in e.message else e.message, allowed) from None
        found = {j: bones[i] for j, i in idx.items()}
        keys = {names.strip_namespace(m).lower(): b for m, b in zip(match, bones)}
        for key, name in _FACE_BONES.get(used, {}).items():
            if name.lower() in keys:
                found[key] = keys[name.lower()]
    taken = set(found.values())
    return used, found, [b for b in bones if b not in taken]


JOINT_KEYS = rig.JOINT_NAMES + FACE_KEYS
