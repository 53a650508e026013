"""Builds the pack's mannequin as a rigged character file, as a user's rig would come: ONE skinned
mesh object parented to an armature whose bones carry real-world humanoid names (Mixamo, Blender's
Rigify metarig, VRM's VRoid-style names with the VRM humanoid extension), written by Blender's own
exporters (FBX, glTF binary, .blend; VRM as a GLB whose JSON chunk carries the extension). The
tests, the custom-rig template (example_workflows/input/3d/) and the bench use these files, since
no asset can be downloaded (docs/rigs.md, "Test and template rigs").

    make_rig(out, naming="mixamo", rest="a-pose", ...) -> truth dict (also written next to the file
    as <out stem>.json unless sidecar=False)
    python -m blender_scripts.make_rig --naming mixamo --rest a-pose --format glb --out X
    python -m blender_scripts.make_rig --template     (the custom-rig template's rig: make rig-template)

The truth gives, in the frame Blender's own importers bring the file back in (metres, Z up), the
head of every bone (`bones`), which bone stands at each of our joints (`joints`: {joint: bone},
`positions`: {joint: [x, y, z]}), the direction the character faces and the triangle count.

Rest poses: "a-pose" / "t-pose" raise both arms sideways by 45 / 90 degrees in the REST pose (mesh
included, palms down), "arms-down" is the mannequin's own rest. Every vertex is bound to its
joint's bone with weight 1, as the mannequin is jointed (smooth=True blends across the body's
main joints instead). Bones removed with `drop` give their vertices to the nearest kept ancestor.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from blender_scripts.scene import CLAY, FEATURES
from pose_factory import example_inputs, glb
from pose_factory.render import mannequin as mq
from pose_factory.render import rig

# the custom-rig template's rig, copied into ComfyUI's input folder (pose_factory/example_inputs.py):
# Mixamo names, an A-pose rest (so a run shows the rest is measured, not assumed), a ponytail on a
# hair bone (hair in the depth pass). `make rig-template` writes it; the same bytes every time.
TEMPLATE_PATH = example_inputs.SOURCE_DIR / example_inputs.RIG
TEMPLATE_OPTIONS = {"naming": "mixamo", "rest": "a-pose", "hair": True, "sidecar": False}
NAMINGS = ("mixamo", "rigify", "vrm0", "vrm1", "mannequin", "generic")


def _family(naming: str) -> str:
    """The skeleton layout a naming has: Mixamo's (our own names and generic ones use it too),
    Blender's Rigify metarig's, or VRoid's."""
    return "vrm" if naming.startswith("vrm") else "rigify" if naming == "rigify" else "mixamo"
RESTS = {"arms-down": 0.0, "a-pose": 45.0, "t-pose": 90.0}  # shoulder abduction in the rest pose
FORMATS = ("fbx", "glb", "gltf", "blend", "vrm")
DROP_GROUPS = {  # names `drop` accepts besides single joints (a joint takes its whole subtree)
    "l_fingers": [f"l_{f}1" for f in rig.FINGERS], "r_fingers": [f"r_{f}1" for f in rig.FINGERS],
    "l_hand": ["l_wrist"], "r_hand": ["r_wrist"], "eyes": ["l_eye", "r_eye"],
}
FINGER_WORD = {"mixamo": {f: f.capitalize() for f in rig.FINGERS},
               "vrm": {"thumb": "Thumb", "index": "Index", "middle": "Middle", "ring": "Ring", "pinky": "Little"},
               "rigify": {"thumb": "thumb", "index": "f_index", "middle": "f_middle", "ring": "f_ring",
                          "pinky": "f_pinky"}}
# VRM humanoid bone names of our joints (VRM 1.0; 0.x names the thumb's three bones differently)
_VRM_LIMBS = {"shoulder": "UpperArm", "elbow": "LowerArm", "wrist": "Hand", "hip": "UpperLeg", "knee": "LowerLeg",
              "ankle": "Foot", "toe": "Toes"}
_VRM_FINGER_PHALANX = ("Proximal", "Intermediate", "Distal")
_VRM1_THUMB = ("Metacarpal", "Proximal", "Distal")


def vrm_human_bones(version: int) -> dict:
    """{our joint or extra: VRM humanoid bone name} for VRM 0.x (version 0) or 1.0 (version 1)."""
    out = {"root": "hips", "spine": "spine", "chest": "chest", "upper_chest": "upperChest", "neck": "neck",
           "head": "head"}
    for side, word in (("l", "left"), ("r", "right")):
        out[f"{side}_eye"] = f"{word}Eye"
        out[f"{side}_clavicle"] = f"{word}Shoulder"
        for j, name in _VRM_LIMBS.items():
            out[f"{side}_{j}"] = word + name
        for f in rig.FINGERS:
            phal = _VRM1_THUMB if (f == "thumb" and version == 1) else _VRM_FINGER_PHALANX
            for i in (1, 2, 3):
                out[f"{side}_{f}{i}"] = word + FINGER_WORD["vrm"][f] + phal[i - 1]
    return out


@dataclass
class Bone:
    key: str            # our joint name, or the extra's key (l_clavicle, upper_chest, hair, ...)
    name: str           # the bone's name in the file
    parent: str | None  # parent key
    head: np.ndarray
    tail: np.ndarray | None = None


def bone_name(key: str, naming: str, prefix: str = "") -> str:
    """The bone name a naming gives our joint or extra (key), prefix included."""
    side = key[:2] if key[:2] in ("l_", "r_") else ""
    base = key[2:] if side else key
    if naming == "mixamo":
        word = {"l_": "Left", "r_": "Right", "": ""}[side]
        limbs = {"shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand", "hip": "UpLeg", "knee": "Leg",
                 "ankle": "Foot", "toe": "ToeBase", "toe_end": "Toe_End", "clavicle": "Shoulder", "eye": "Eye"}
        centre = {"root": "Hips", "spine": "Spine", "spine1": "Spine1", "chest": "Spine2", "neck": "Neck",
                  "head": "Head", "head_end": "HeadTop_End", "hair": "Hair"}
        if base in limbs:
            name = word + limbs[base]
        elif base in centre:
            name = centre[base]
        else:  # fingers: LeftHandIndex1..4
            name = f"{word}Hand{FINGER_WORD['mixamo'][base[:-1]]}{base[-1]}"
        return prefix + name
    if naming == "rigify":
        s = {"l_": ".L", "r_": ".R", "": ""}[side]
        limbs = {"shoulder": "upper_arm", "elbow": "forearm", "wrist": "hand", "hip": "thigh", "knee": "shin",
                 "ankle": "foot", "toe": "toe", "clavicle": "shoulder", "eye": "eye", "heel": "heel.02"}
        centre = {"root": "spine", "spine": "spine.001", "chest": "spine.002", "upper_chest": "spine.003",
                  "neck": "spine.004", "neck1": "spine.005", "head": "spine.006", "face": "face", "hair": "hair"}
        if base in limbs:
            return prefix + limbs[base] + s
        if base in centre:
            return prefix + centre[base]
        if base.startswith("palm"):
            return f"{prefix}palm.0{base[-1]}{s}"
        if base == "toe_end":
            return f"{prefix}toe{s}_end"
        f, i = base[:-1], int(base[-1])
        if i == 4:  # no rigify bone: an end bone at the tip
            return f"{prefix}{FINGER_WORD['rigify'][f]}.03{s}_end"
        return f"{prefix}{FINGER_WORD['rigify'][f]}.0{i}{s}"
    # VRM models as VRoid Studio names them
    s = {"l_": "L_", "r_": "R_", "": "C_"}[side]
    limbs = {"shoulder": "UpperArm", "elbow": "LowerArm", "wrist": "Hand", "hip": "UpperLeg", "knee": "LowerLeg",
             "ankle": "Foot", "toe": "ToeBase", "clavicle": "Shoulder"}
    centre = {"root": "Hips", "spine": "Spine", "chest": "Chest", "upper_chest": "UpperChest", "neck": "Neck",
              "head": "Head"}
    if base == "eye":
        return f"{prefix}J_Adj_{s}FaceEye"
    if base == "hair":
        return f"{prefix}J_Sec_Hair1_01"
    if base == "toe_end":
        return f"{prefix}J_Bip_{s}ToeBase_end"
    if base in limbs:
        return f"{prefix}J_Bip_{s}{limbs[base]}"
    if base in centre:
        return f"{prefix}J_Bip_{s}{centre[base]}"
    f, i = base[:-1], int(base[-1])
    if i == 4:
        return f"{prefix}J_Bip_{s}{FINGER_WORD['vrm'][f]}3_end"
    return f"{prefix}J_Bip_{s}{FINGER_WORD['vrm'][f]}{i}"


def _layout(naming: str, body: mq.Mannequin, tips: bool) -> list[Bone]:
    """The bones in the mannequin's own rest (arms down), keyed by our joints and the extras each
    naming has; extras sit between our joints as real rigs have them."""
    s = body.height / rig.REFERENCE_HEIGHT
    P = {n: body.rest[i].copy() for i, n in enumerate(rig.JOINT_NAMES)}
    head = mq.Head(s, rig.BUILDS[body.build])
    bones = {}

    def add(key, parent, pos):
        bones[key] = Bone(key, "", parent, np.asarray(pos, float))

    family = _family(naming)
    add("root", None, P["root"])
    add("spine", "root", P["spine"])
    top_spine = "chest"
    if family == "mixamo":  # Hips, Spine, Spine1 (extra), Spine2 (our chest)
        add("spine1", "spine", (P["spine"] + P["chest"]) / 2)
        add("chest", "spine1", P["chest"])
    else:
        add("chest", "spine", P["chest"])
        add("upper_chest", "chest", (P["chest"] + P["neck"]) / 2)
        top_spine = "upper_chest"
    add("neck", top_spine, P["neck"])
    if family == "rigify":
        add("neck1", "neck", (P["neck"] + P["head"]) / 2)
        add("head", "neck1", P["head"])
    else:
        add("head", "neck", P["head"])
    if family == "mixamo":
        add("head_end", "head", head.c + [0, 0, head.r[2]])
    if family == "rigify":  # the metarig's face bone, at the head's base, carries the eyes
        add("face", "head", P["head"])
    for side, sx in (("l", 1), ("r", -1)):
        n = lambda j: f"{side}_{j}"  # noqa: E731
        # the eyeball's centre, 1 cm behind the mannequin's eye point on the surface
        add(n("eye"), "face" if family == "rigify" else "head", head.eye(sx) + [0, 0.01 * s, 0])
        add(n("clavicle"), top_spine, np.array([sx * 0.03, 0.0, 1.4]) * s)
        add(n("shoulder"), n("clavicle"), P[n("shoulder")])
        add(n("elbow"), n("shoulder"), P[n("elbow")])
        add(n("wrist"), n("elbow"), P[n("wrist")])
        for k, f in enumerate(rig.FINGERS):
            parent = n("wrist")
            if family == "rigify" and f != "thumb":  # palm.01..04 from the wrist to each knuckle
                add(n(f"palm{k}"), n("wrist"), P[n("wrist")] + (P[n(f"{f}1")] - P[n("wrist")]) * 0.35)
                parent = n(f"palm{k}")
            for i in (1, 2, 3, 4):
                if i == 4 and not tips and family != "mixamo":
                    continue
                add(n(f"{f}{i}"), parent, P[n(f"{f}{i}")])
                parent = n(f"{f}{i}")
        add(n("hip"), "root", P[n("hip")])
        add(n("knee"), n("hip"), P[n("knee")])
        add(n("ankle"), n("knee"), P[n("ankle")])
        add(n("toe"), n("ankle"), P[n("toe")])
        if family != "vrm":
            add(n("toe_end"), n("toe"), P[n("toe")] + np.array([0, -0.06, -0.005]) * s)
    if family == "rigify":  # the metarig's palm bones sit under the hand, the thumb under palm.01
        for side in ("l", "r"):
            bones[f"{side}_thumb1"].parent = f"{side}_palm1"
    return list(bones.values())


# the joint whose motion an extra follows (for the rest pose's arm raise)
CARRIERS = {"spine1": "spine", "upper_chest": "chest", "neck1": "neck", "head_end": "head", "face": "head",
            "hair": "head"}


def _carrier(key: str) -> str:
    side = key[:2] if key[:2] in ("l_", "r_") else ""
    base = key[len(side):]
    if base == "clavicle":
        return "chest"
    if base == "eye":
        return "head"
    if base == "toe_end":
        return side + "toe"
    if base.startswith("palm"):
        return side + "wrist"
    return CARRIERS.get(key, key)


TAIL_CHILD = {"root": "spine", "spine": ("spine1", "chest"), "spine1": "chest", "chest": ("upper_chest", "neck"),
              "upper_chest": "neck", "neck": ("neck1", "head"), "neck1": "head", "wrist": "middle1",
              "shoulder": "elbow", "elbow": "wrist", "hip": "knee", "knee": "ankle", "ankle": "toe",
              "toe": "toe_end", "clavicle": "shoulder"}


def _tails(bones: list[Bone], points: dict, s: float):
    """Each bone's tail: the head of its chain's next bone or point (points: key -> position, incl.
    finger tips), else its parent's direction continued for 2 cm (end bones)."""
    by_key = {b.key: b for b in bones}
    for b in bones:
        side = b.key[:2] if b.key[:2] in ("l_", "r_") else ""
        base = b.key[2:] if side else b.key
        want = TAIL_CHILD.get(base, ())
        want = (want,) if isinstance(want, str) else want
        target = next((points[side + w] for w in want if side + w in points), None)
        if target is None and base[-1:] in "123" and base[:-1] in rig.FINGERS:
            target = points.get(f"{side}{base[:-1]}{int(base[-1]) + 1}")
        if target is None and "palm" in base:
            target = points[f"{side}{rig.FINGERS[int(base[-1])]}1"]
        if target is None and base in ("head", "face"):
            target = points.get("head_end", b.head + np.array([0, 0, 0.15 * s]))
        if target is None:
            parent = by_key.get(b.parent)
            d = b.head - parent.head if parent is not None else np.array([0, 0, 1.0])
            if base == "eye":
                d = np.array([0, -1.0, 0])
            d = d / max(np.linalg.norm(d), 1e-9)
            target = b.head + d * 0.02 * s
        if np.linalg.norm(target - b.head) < 1e-4:
            target = b.head + np.array([0, 0, 0.02 * s])
        b.tail = np.asarray(target, float)


# --- the mesh ---------------------------------------------------------------------------------
def _ponytail(head: mq.Head, s: float):
    """A hanging ponytail behind the head (weighted to the hair bone): hair that shows in depth."""
    top = head.c + np.array([0, 0.085, 0.02]) * s
    bottom = head.c + np.array([0, 0.125, -0.15]) * s
    v, f = mq.loft(top, bottom, [(0, 0.028 * s, 0.024 * s), (0.5, 0.03 * s, 0.026 * s), (1, 0.012 * s, 0.012 * s)], seg=12)
    return v, f, top, bottom


def _subdivide(verts, tris, owner, mats, pieces):
    """Midpoint subdivision (each triangle into four) of the triangles whose piece is in pieces;
    pieces never share vertices, so no crack opens."""
    verts, owner = list(verts), list(owner)
    cache, out_t, out_m = {}, [], []

    def mid(a, b):
        k = (min(a, b), max(a, b))
        if k not in cache:
            cache[k] = len(verts)
            verts.append((np.asarray(verts[a]) + np.asarray(verts[b])) / 2)
            owner.append(owner[a])
        return cache[k]

    for t, m, p in zip(tris, mats, pieces):
        if not p:
            out_t.append(t)
            out_m.append(m)
            continue
        a, b, c = t
        ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
        out_t += [(a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca)]
        out_m += [m] * 4
    return np.array(verts), np.array(out_t), np.array(owner), np.array(out_m)


def _mesh_arrays(body: mq.Mannequin, hair: bool, triangles: int):
    """(verts (N,3) in the mannequin's rest, triangles (T,3), owner key per vertex, material per
    triangle): the mannequin's triangles as the renderer has them (whole body parts subdivided
    towards `triangles` if asked)."""
    s = body.height / rig.REFERENCE_HEIGHT
    verts, tris, owner, mats, part_of = [], [], [], [], []
    base = 0
    for part in body.parts:
        t, m = part.triangles()
        verts.append(part.verts)
        tris.append(t + base)
        owner += [rig.JOINT_NAMES[j] for j in part.joints]
        mats.append(m)
        part_of += [part.name] * len(t)
        base += len(part.verts)
    if hair:
        v, f, _, _ = _ponytail(mq.Head(s, rig.BUILDS[body.build]), s)
        t, m = mq.triangulate(v, f, np.ones(len(f), np.int32))
        verts.append(v)
        tris.append(t + base)
        owner += ["hair"] * len(v)
        mats.append(m)
        part_of += ["hair"] * len(t)
    verts, tris, mats = np.concatenate(verts), np.concatenate(tris), np.concatenate(mats)
    owner, part_of = np.array(owner), np.array(part_of)
    used = np.unique(tris)  # the hair cap's builder leaves vertices no face uses: not in the file
    remap = np.full(len(verts), -1)
    remap[used] = np.arange(len(used))
    verts, owner, tris = verts[used], owner[used], remap[tris]
    if triangles and len(tris) < triangles:  # subdivide whole parts, largest first, towards the target
        names, counts = np.unique(part_of, return_counts=True)
        chosen, total = set(), len(tris)
        while total < triangles * 0.97:
            grown = False
            for name, count in sorted(zip(names, counts), key=lambda x: -x[1]):
                if name not in chosen and total + 3 * count <= triangles * 1.08:
                    chosen.add(name)
                    total += 3 * count
                    grown = True
            if not grown:
                if not chosen:  # the smallest part overshoots: take it anyway
                    chosen.add(names[np.argmin(counts)])
                # a further level over the parts chosen so far
                verts, tris, owner, mats = _subdivide(verts, tris, owner, mats, np.isin(part_of, list(chosen)))
                part_of = np.repeat(part_of, np.where(np.isin(part_of, list(chosen)), 4, 1))
                names, counts = np.unique(part_of, return_counts=True)
                chosen, total = set(), len(tris)
                continue
        verts, tris, owner, mats = _subdivide(verts, tris, owner, mats, np.isin(part_of, list(chosen)))
    return verts, tris, owner, mats


def _smooth_weights(verts, owner, P, parent_of, s):
    """Blended weights near the body's main joints: a vertex within 6 cm of its joint shares with
    the parent joint's bone, and one of the parent's within 6 cm of the child joint with the child,
    up to half-and-half at the joint itself. Returns [(key, weights (N,))]."""
    radius = 0.06 * s
    keys = sorted(set(owner))
    w = {k: (owner == k).astype(float) for k in keys}
    blend = [j for j in rig.JOINT_NAMES if rig.side_of(j) is None or j[2:] in ("shoulder", "elbow", "wrist", "hip",
                                                                                  "knee", "ankle")]
    for j in blend:
        p = parent_of.get(j)
        if p is None or j not in w or p not in w:
            continue
        d = np.linalg.norm(verts - P[j], axis=1)
        share = np.clip(0.5 * (1 - d / radius), 0, 0.5)
        mine, theirs = owner == j, owner == p
        w[p] = np.where(mine, w[p] + share * w[j], w[p])
        w[j] = np.where(mine, w[j] * (1 - share), w[j])
        w[j] = np.where(theirs, w[j] + share * w[p], w[j])
        w[p] = np.where(theirs, w[p] * (1 - share), w[p])
    return [(k, w[k]) for k in keys]


# --- Blender ------------------------------------------------------------------------------------
def _material(name, colour):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = colour
        bsdf.inputs["Roughness"].default_value = 0.8
    mat.diffuse_color = colour
    return mat


def _subset(name, verts, tris, mats, groups, keep):
    """(name, verts, tris, mats, groups) of the vertices keep marks and the triangles among them."""
    remap = np.full(len(verts), -1)
    remap[keep] = np.arange(int(keep.sum()))
    inside = keep[tris].all(axis=1)
    return name, verts[keep], remap[tris[inside]], mats[inside], [(k, w[keep]) for k, w in groups]


def _mesh_object(scene, name, verts, tris, mats, materials):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], tris.tolist())
    mesh.validate()
    mesh.shade_smooth()
    for mat in materials:
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", mats.astype(np.int32))
    ob = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(ob)
    return ob


def _blender_scene(bones: list[Bone], objects: list, name: str, armature: bool = True):
    """The armature and one skinned mesh object per (name, verts, tris, mats, groups) of objects
    (armature=False: the mesh objects alone, neither skinned nor parented)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    materials = [_material("clay", CLAY), _material("features", FEATURES)]
    if not armature:
        for ob_name, verts, tris, mats, _ in objects:
            _mesh_object(scene, ob_name, verts, tris, mats, materials)
        return None
    arm = bpy.data.armatures.new(name)
    arm_ob = bpy.data.objects.new("Armature", arm)
    scene.collection.objects.link(arm_ob)
    bpy.context.view_layer.objects.active = arm_ob
    bpy.ops.object.mode_set(mode="EDIT")
    by_key = {}
    for b in bones:
        eb = arm.edit_bones.new(b.name)
        eb.head, eb.tail = b.head.tolist(), b.tail.tolist()
        by_key[b.key] = eb
    for b in bones:
        if b.parent is not None:
            by_key[b.key].parent = by_key[b.parent]
            # connected where the parent's tail is this head (a chain), as exported rigs have them
            gap = np.array(by_key[b.parent].tail) - np.array(by_key[b.key].head)
            by_key[b.key].use_connect = bool(np.linalg.norm(gap) < 1e-6)
    bpy.ops.object.mode_set(mode="OBJECT")
    names = {b.key: b.name for b in bones}
    for ob_name, verts, tris, mats, groups in objects:
        ob = _mesh_object(scene, ob_name, verts, tris, mats, materials)
        for key, weights in groups:
            if not (weights > 0).any():
                continue
            group = ob.vertex_groups.new(name=names[key])
            for value in np.unique(weights[weights > 0]):
                group.add(np.nonzero(weights == value)[0].tolist(), float(value), "REPLACE")
        ob.parent = arm_ob
        mod = ob.modifiers.new("Armature", "ARMATURE")
        mod.object = arm_ob
    bpy.context.view_layer.update()
    return arm_ob


def _export(fmt: str, path: Path):
    if fmt == "fbx":  # Blender's defaults: Y up, the character facing +Z, as Mixamo's FBX files
        bpy.ops.export_scene.fbx(filepath=str(path), use_selection=False, object_types={"ARMATURE", "MESH"},
                                 add_leaf_bones=False, bake_anim=False, use_triangles=True,
                                 use_armature_deform_only=False, use_metadata=False)
    elif fmt in ("glb", "vrm"):  # glTF: +Y up, the character facing +Z
        bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB", export_animations=False,
                                  export_skins=True, export_morph=False, export_yup=True, export_apply=False,
                                  export_texcoords=False, export_cameras=False, export_lights=False,
                                  export_extras=False, export_def_bones=False, export_leaf_bone=False)
    else:
        bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False, compress=True)


def read_glb(path) -> tuple[dict, bytes]:
    """(JSON chunk, BIN chunk) of a GLB file."""
    return glb.read(Path(path).read_bytes())


def add_vrm_extension(doc: dict, version: int, bone_of: dict, title="Pose Factory mannequin"):
    """Writes the VRM humanoid into a glTF JSON (VRM 0.x: extensions.VRM, 1.0: extensions.VRMC_vrm),
    per the VRM specification. bone_of: {our key: bone name}; nodes are found by name."""
    node_index = {n.get("name"): i for i, n in enumerate(doc.get("nodes", []))}
    table = vrm_human_bones(version)
    human = {table[k]: node_index[name] for k, name in bone_of.items() if k in table and name in node_index}
    if version == 0:
        ext_name = "VRM"
        ext = {
            "exporterVersion": "pose-factory-make_rig", "specVersion": "0.0",
            "meta": {"title": title, "version": "1", "author": "3D Pose Factory", "contactInformation": "",
                     "reference": "", "texture": -1, "allowedUserName": "Everyone", "violentUssageName": "Allow",
                     "sexualUssageName": "Disallow", "commercialUssageName": "Allow", "otherPermissionUrl": "",
                     "licenseName": "CC0", "otherLicenseUrl": ""},
            "humanoid": {"humanBones": [{"bone": b, "node": i, "useDefaultValues": True} for b, i in human.items()],
                         "armStretch": 0.05, "legStretch": 0.05, "upperArmTwist": 0.5, "lowerArmTwist": 0.5,
                         "upperLegTwist": 0.5, "lowerLegTwist": 0.5, "feetSpacing": 0, "hasTranslationDoF": False},
            "firstPerson": {"firstPersonBone": human.get("head", -1), "firstPersonBoneOffset": {"x": 0, "y": 0.06, "z": 0},
                            "meshAnnotations": [], "lookAtTypeName": "Bone"},
            "blendShapeMaster": {"blendShapeGroups": []},
            "secondaryAnimation": {"boneGroups": [], "colliderGroups": []},
            "materialProperties": [],
        }
    else:
        ext_name = "VRMC_vrm"
        ext = {"specVersion": "1.0",
               "meta": {"name": title, "version": "1", "authors": ["3D Pose Factory"],
                        "licenseUrl": "https://vrm.dev/licenses/1.0/", "avatarPermission": "everyone",
                        "commercialUsage": "corporation", "allowRedistribution": True,
                        "modification": "allowModificationRedistribution", "creditNotation": "unnecessary"},
               "humanoid": {"humanBones": {b: {"node": i} for b, i in human.items()}}}
    doc.setdefault("extensions", {})[ext_name] = ext
    used = doc.setdefault("extensionsUsed", [])
    if ext_name not in used:
        used.append(ext_name)
    return doc


def _drop_set(drop, bones: list[Bone]) -> set:
    keys = {b.key for b in bones}
    roots = []
    for d in drop:
        if d in DROP_GROUPS:
            roots += DROP_GROUPS[d]
        elif d in keys:
            roots.append(d)
        else:
            raise ValueError(f"drop: unknown bone {d!r}; allowed: our joint names (e.g. r_index1, r_wrist) or "
                             + ", ".join(DROP_GROUPS))
    if "root" in roots:
        raise ValueError("drop: the root (hips) cannot be dropped")
    dropped = set(roots)
    grew = True
    while grew:
        grew = False
        for b in bones:
            if b.key not in dropped and b.parent in dropped:
                dropped.add(b.key)
                grew = True
    return dropped


def make_rig(out, naming: str = "mixamo", rest: str | None = None, fmt: str | None = None, prefix: str | None = None,
             height: float = 1.75, build: str = "average", drop=(), hair: bool = False, tips: bool = True,
             smooth: bool = False, triangles: int = 0, sidecar: bool = True, separate_hair: bool = False,
             armature: bool = True) -> dict:
    """Writes the mannequin as a rigged file at out and returns its truth (see the module's doc).

    naming: mixamo | rigify | vrm0 | vrm1 | mannequin (our joint names) | generic (Bone, Bone.001, ...:
    no built-in map knows them; the truth's joints map is the custom map that fits). prefix: put before every bone name ("mixamorig:" by
    default for mixamo, "mixamorig1:" or "" for the other variants; rigify: "" or "DEF-"; vrm: "").
    rest: a-pose | t-pose | arms-down (default: t-pose for VRM, whose specification asks for it,
    else a-pose). fmt: fbx | glb | gltf | blend | vrm (default from out's suffix; the vrm namings
    write GLB bytes, as a .vrm or a .glb, or a .gltf). drop: joints (each with its subtree) or groups
    (l_fingers, r_fingers, l_hand, r_hand, eyes) to leave out. hair: a ponytail mesh on a hair bone
    (separate_hair: as a mesh object of its own, skinned to the same armature). tips: end bones at
    the finger tips (Mixamo always has them: LeftHandIndex4). smooth: blended weights near the main
    joints. triangles: subdivide towards this many. sidecar: write the truth as <out stem>.json.
    armature=False: the mesh alone, no armature (a file an importer must refuse: no armature)."""
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if naming not in NAMINGS:
        raise ValueError(f"naming: got {naming!r}; allowed: {', '.join(NAMINGS)}")
    if rest is None:
        rest = "t-pose" if naming.startswith("vrm") else "a-pose"
    if rest not in RESTS:
        raise ValueError(f"rest: got {rest!r}; allowed: {', '.join(RESTS)}")
    if fmt not in FORMATS:
        raise ValueError(f"format: got {fmt!r}; allowed: {', '.join(FORMATS)}")
    if not armature and naming.startswith("vrm"):
        raise ValueError("armature=False writes a mesh alone; a VRM needs its armature")
    if fmt == "vrm" and not naming.startswith("vrm"):
        raise ValueError("format vrm needs naming vrm0 or vrm1")
    if naming.startswith("vrm") and fmt not in ("vrm", "glb", "gltf"):
        raise ValueError(f"naming {naming} writes a GLB (.vrm or .glb) or a .gltf, not {fmt}")
    if prefix is None:
        prefix = "mixamorig:" if naming == "mixamo" else ""
    s = height / rig.REFERENCE_HEIGHT
    body = mq.build(height, build)
    bones = _layout(naming, body, tips)
    if hair:
        head = mq.Head(s, rig.BUILDS[build])
        _, _, top, bottom = _ponytail(head, s)
        bones.append(Bone("hair", "", "head", top))
    for i, b in enumerate(bones):
        if naming == "mannequin":  # our own joint names (and the extras' keys)
            b.name = prefix + b.key
        elif naming == "generic":  # names no built-in map knows: Bone, Bone.001, ... (a custom map's case)
            b.name = prefix + ("Bone" if i == 0 else f"Bone.{i:03d}")
        else:
            b.name = bone_name(b.key, _family(naming), prefix)
    verts, tris, owner, mats = _mesh_arrays(body, hair, triangles)

    # the rest pose: both arms raised sideways, mesh and bones alike
    angle = RESTS[rest]
    posed = rig.forward_kinematics(body.rest, {f"{sd}_shoulder": {"abduct": angle} for sd in rig.SIDES})
    J = rig.JOINT_INDEX

    def place(points, carriers):
        idx = np.array([J[c] for c in carriers])
        return posed.transform_points(idx, np.asarray(points, float), body.rest)

    for b in bones:
        b.head = place([b.head], [_carrier(b.key)])[0]
    verts = place(verts, [_carrier(o) for o in owner])
    points = {b.key: b.head for b in bones}
    for j in rig.JOINT_NAMES:  # finger tips as tails where no tip bone exists
        points.setdefault(j, posed.positions[J[j]])
    if hair:
        points["hair_tail"] = place([_ponytail(mq.Head(s, rig.BUILDS[build]), s)[3]], ["head"])[0]
    _tails(bones, points, s)
    if hair:
        next(b for b in bones if b.key == "hair").tail = points["hair_tail"]

    hair_vertices = np.nonzero(owner == "hair")[0]
    dropped = _drop_set(drop, bones)
    parent_of = {b.key: b.parent for b in bones}
    kept = [b for b in bones if b.key not in dropped]
    owner = owner.copy()
    for i, o in enumerate(owner):
        while o in dropped:
            o = parent_of[o]
        owner[i] = o
    joint_parent = {n: rig.JOINT_NAMES[rig.PARENT_INDEX[i]] for i, n in enumerate(rig.JOINT_NAMES)
                    if rig.PARENT_INDEX[i] >= 0}
    if smooth:
        groups = _smooth_weights(verts, owner, {b.key: b.head for b in kept}, joint_parent, s)
    else:
        groups = [(k, (owner == k).astype(float)) for k in sorted(set(owner))]

    if naming == "vrm0":  # VRM 0.x models face -Z in glTF: turn the whole character round
        turn = np.diag([-1.0, -1.0, 1.0])
        verts = verts @ turn.T
        for b in kept:
            b.head, b.tail = turn @ b.head, turn @ b.tail
    facing = "+Y" if naming == "vrm0" else "-Y"

    objects = [("PoseFactoryMannequin", verts, tris, mats, groups)]
    if hair and separate_hair:  # the ponytail as a mesh object of its own, skinned to the same armature
        is_hair = np.zeros(len(verts), bool)
        is_hair[hair_vertices] = True
        objects = [_subset(o_name, verts, tris, mats, groups, keep) for o_name, keep in
                   (("PoseFactoryMannequin", ~is_hair), ("PoseFactoryHair", is_hair))]
    _blender_scene(kept, objects, "PoseFactoryMannequin", armature)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "gltf" or naming.startswith("vrm"):
        tmp = out.with_name(f".{out.stem}.tmp.glb")
        try:
            _export("glb", tmp)
            doc, binary = read_glb(tmp)
        finally:
            tmp.unlink(missing_ok=True)
        if naming.startswith("vrm"):
            add_vrm_extension(doc, 0 if naming == "vrm0" else 1, {b.key: b.name for b in kept})
        if fmt == "gltf":  # one self-contained .gltf: the buffer as a base64 data URI (glTF 2.0 allows it)
            doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode()
            out.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        else:
            out.write_bytes(glb.write(doc, binary))
    else:
        _export(fmt, out)
    for extra in out.parent.glob(out.name + "1"):  # save_as_mainfile's backup, if any
        extra.unlink()

    if not armature:
        kept = []
    joints = {b.key: b.name for b in kept if b.key in J}
    truth = {
        "file": out.name, "format": fmt, "naming": naming, "prefix": prefix, "rest": rest,
        "shoulder_abduction": angle, "height": height, "build": build, "facing": facing,
        "frame": "Blender's importers' frame: metres, Z up",
        "triangles": int(len(tris)), "dropped": sorted(dropped), "hair": hair, "smooth": smooth,
        "objects": [o[0] for o in objects], "armature": armature,
        "bones": {b.name: [round(float(c), 6) for c in b.head] for b in kept},
        "tails": {b.name: [round(float(c), 6) for c in b.tail] for b in kept},
        "parents": {b.name: ({x.key: x.name for x in kept}.get(b.parent)) for b in kept},
        "joints": joints,
        "positions": {j: [round(float(c), 6) for c in (posed.positions[J[j]] if naming != "vrm0" else
                                                       np.diag([-1.0, -1.0, 1.0]) @ posed.positions[J[j]])]
                      for j in rig.JOINT_NAMES},
    }
    if sidecar:
        out.with_suffix(".json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return truth


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m blender_scripts.make_rig", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="the file to write (its suffix gives the format unless --format)")
    p.add_argument("--template", action="store_true", help=f"write the custom-rig template's rig "
                   f"({TEMPLATE_PATH.relative_to(example_inputs.PACK_ROOT)}) with its options; nothing else is read")
    p.add_argument("--naming", default="mixamo", choices=NAMINGS)
    p.add_argument("--rest", choices=list(RESTS), help="default: t-pose for vrm0/vrm1, else a-pose")
    p.add_argument("--format", dest="fmt", choices=FORMATS)
    p.add_argument("--prefix", help="before every bone name (mixamo: 'mixamorig:' unless given)")
    p.add_argument("--height", type=float, default=1.75)
    p.add_argument("--build", default="average", choices=list(rig.BUILDS))
    p.add_argument("--drop", action="append", default=[], help="a joint or group to leave out (repeatable)")
    p.add_argument("--hair", action="store_true")
    p.add_argument("--separate-hair", action="store_true", help="the ponytail as a mesh object of its own")
    p.add_argument("--no-tips", dest="tips", action="store_false")
    p.add_argument("--no-armature", dest="armature", action="store_false", help="the mesh alone")
    p.add_argument("--smooth", action="store_true")
    p.add_argument("--triangles", type=int, default=0)
    p.add_argument("--no-sidecar", dest="sidecar", action="store_false")
    a = p.parse_args(argv)
    if a.template:
        truth = make_rig(TEMPLATE_PATH, **TEMPLATE_OPTIONS)
        print(f"{TEMPLATE_PATH}: {len(truth['bones'])} bones, {truth['triangles']} triangles, rest {truth['rest']}")
        return
    if not a.out:
        p.error("--out is required (or --template)")
    truth = make_rig(a.out, a.naming, a.rest, a.fmt, a.prefix, a.height, a.build, a.drop, a.hair, a.tips, a.smooth,
                     a.triangles, a.sidecar, a.separate_hair, a.armature)
    print(f"{a.out}: {len(truth['bones'])} bones, {truth['triangles']} triangles, rest {truth['rest']}")


if __name__ == "__main__":
    main(sys.argv[1:])
