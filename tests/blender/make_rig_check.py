"""Makes rigged mannequin files with blender_scripts.make_rig, re-imports each with Blender's own
importers (in a fresh scene) and writes what it measured, for tests/test_make_rig.py:
    python tests/blender/make_rig_check.py OUT_DIR VARIANTS_JSON
VARIANTS_JSON: {"name": {make_rig keyword arguments, "file": "name.ext"}, ...}.
OUT_DIR/results.json: {"name": {"truth": ..., "imported": ...}}."""
import hashlib
import json
import sys
from pathlib import Path

import bpy
import numpy as np

from blender_scripts import make_rig


def reimport(path: Path) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if path.suffix == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    elif path.suffix == ".blend":
        with bpy.data.libraries.load(str(path), link=False) as (src, dst):
            dst.objects = list(src.objects)
        for ob in dst.objects:
            bpy.context.scene.collection.objects.link(ob)
    else:  # .glb, .vrm: GLB bytes; .gltf: JSON with its buffer inside
        bpy.ops.import_scene.gltf(filepath=str(path), disable_bone_shape=True)
    bpy.context.view_layer.update()
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    out = {"armatures": len(arms), "meshes": len(meshes)}
    if len(arms) != 1:
        return out
    arm = arms[0]
    mw = np.array(arm.matrix_world)
    out["bones"] = {b.name: (mw @ np.append(np.array(b.head_local), 1.0))[:3].tolist() for b in arm.data.bones}
    out["parents"] = {b.name: (b.parent.name if b.parent else None) for b in arm.data.bones}
    mesh_info = []
    for ob in meshes:
        mods = [m for m in ob.modifiers if m.type == "ARMATURE"]
        me = ob.data
        me.calc_loop_triangles()
        groups = {g.index: g.name for g in ob.vertex_groups}
        sums, maxes, used = [], [], set()
        for v in me.vertices:
            ws = [(groups[g.group], g.weight) for g in v.groups if g.weight > 0]
            sums.append(sum(w for _, w in ws))
            maxes.append(max((w for _, w in ws), default=0.0))
            used |= {n for n, _ in ws}
        verts = np.array([ob.matrix_world @ v.co for v in me.vertices])
        mesh_info.append({
            "name": ob.name, "parent": ob.parent.name if ob.parent else None,
            "armature_modifier": [m.object.name if m.object else None for m in mods],
            "triangles": len(me.loop_triangles), "vertices": len(me.vertices),
            "weight_sum_min": float(min(sums, default=0)), "weight_sum_max": float(max(sums, default=0)),
            "weight_max_min": float(min(maxes, default=0)), "weighted_groups": sorted(used),
            "bbox_min": verts.min(0).tolist(), "bbox_max": verts.max(0).tolist(),
        })
    out["armature_name"] = arm.name
    out["mesh"] = mesh_info
    return out


# a pose that moves every part of the body (our joints' DOFs, docs/poses.md)
POSE = {"root": {"yaw": 30, "pitch": 10}, "spine": {"twist": 20, "flex": 10}, "chest": {"side": 8},
        "neck": {"twist": 25}, "head": {"flex": 15}, "l_shoulder": {"flex": 60, "twist": 20}, "l_elbow": {"flex": 70},
        "l_wrist": {"flex": 30}, "r_shoulder": {"abduct": 20, "flex": -30}, "r_elbow": {"flex": 40, "twist": 30},
        "l_hip": {"flex": 40}, "l_knee": {"flex": 60}, "l_ankle": {"flex": 20}, "r_hip": {"abduct": 15},
        "l_index1": {"curl": 60}, "l_index2": {"curl": 50}, "l_thumb1": {"curl": 30}, "r_pinky1": {"curl": 80}}


def deform_check(truth: dict) -> dict:
    """Poses the re-imported armature so each mapped bone turns as our forward kinematics turns its
    joint (from the file's own rest: the A/T-pose counts), evaluates the skinned mesh and measures
    how far its vertices lie from the mannequin's own posed vertices (both ways, nearest vertex)."""
    from mathutils import Matrix
    from mathutils.kdtree import KDTree

    from pose_factory.render import mannequin as mq
    from pose_factory.render import rig

    body = mq.build(truth["height"], truth["build"])
    angle = truth["shoulder_abduction"]
    rest = rig.forward_kinematics(body.rest, {f"{s}_shoulder": {"abduct": angle} for s in rig.SIDES})
    target = rig.forward_kinematics(body.rest, POSE)
    turn = np.diag([-1.0, -1.0, 1.0]) if truth["facing"] == "+Y" else np.eye(3)
    joint_of = {bone: j for j, bone in truth["joints"].items()}
    arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    ob = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    A = np.array(arm.matrix_world)
    A_inv = np.linalg.inv(A)
    G, pose = {}, {}
    for bone in arm.data.bones:  # parents come before children
        j = joint_of.get(bone.name)
        if j is not None:
            i = rig.JOINT_INDEX[j]
            g = np.eye(4)
            g[:3, :3] = turn @ target.rotations[i] @ rest.rotations[i].T @ turn.T
            g[:3, 3] = turn @ target.positions[i] - g[:3, :3] @ (turn @ rest.positions[i])
        else:
            g = G[bone.parent.name] if bone.parent else np.eye(4)
        G[bone.name] = g
        rest_b = np.array(bone.matrix_local)
        pose[bone.name] = A_inv @ g @ A @ rest_b
        if bone.parent:
            rest_p = np.array(bone.parent.matrix_local)
            basis = np.linalg.inv(np.linalg.inv(rest_p) @ rest_b) @ np.linalg.inv(pose[bone.parent.name]) @ pose[bone.name]
        else:
            basis = np.linalg.inv(rest_b) @ pose[bone.name]
        pb = arm.pose.bones[bone.name]
        pb.rotation_mode = "QUATERNION"
        pb.matrix_basis = Matrix(basis.tolist())
    bpy.context.view_layer.update()
    deps = bpy.context.evaluated_depsgraph_get()
    ev = ob.evaluated_get(deps)
    mw = np.array(ev.matrix_world)
    got = np.array([(mw @ np.append(np.array(v.co), 1.0))[:3] for v in ev.data.vertices])
    want = mq.posed_vertices(body, target)[np.unique(body.all_triangles())] @ turn.T  # glTF keeps only these

    def farthest(a, b):
        tree = KDTree(len(b))
        for k, p in enumerate(b):
            tree.insert(p.tolist(), k)
        tree.balance()
        return max(tree.find(p.tolist())[2] for p in a)

    return {"got_to_mannequin": farthest(got, want), "mannequin_to_got": farthest(want, got)}


def gltf_world_positions(doc: dict) -> dict:
    """{node name: world translation} in glTF's own frame (+Y up), from the nodes' TRS."""
    def matrix(n):
        if "matrix" in n:
            return np.array(n["matrix"], float).reshape(4, 4).T
        x, y, z, w = n.get("rotation", [0, 0, 0, 1])
        r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        m = np.eye(4)
        m[:3, :3] = r * np.array(n.get("scale", [1, 1, 1]))
        m[:3, 3] = n.get("translation", [0, 0, 0])
        return m

    nodes = doc["nodes"]
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", [])}
    out = {}
    for i, n in enumerate(nodes):
        m, k = matrix(n), i
        while k in parent:
            k = parent[k]
            m = matrix(nodes[k]) @ m
        out[n.get("name", str(i))] = m[:3, 3].tolist()
    return out


def main(out_dir, variants_json):
    out_dir = Path(out_dir)
    results = {}
    for name, kw in json.loads(variants_json).items():
        kw = dict(kw)
        path = out_dir / kw.pop("file")
        truth = make_rig.make_rig(path, **kw)
        entry = {"truth": truth, "size": path.stat().st_size, "imported": reimport(path),
                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        plain = not (truth["hair"] or truth["dropped"] or truth["smooth"] or kw.get("triangles"))
        if plain and entry["imported"]["armatures"] == 1:  # the mannequin's own mesh, bone for bone
            entry["deform"] = deform_check(truth)
        if path.suffix in (".glb", ".vrm"):
            doc, _ = make_rig.read_glb(path)
            entry["gltf"] = {"extensions": doc.get("extensions", {}), "extensionsUsed": doc.get("extensionsUsed", []),
                             "node_names": [n.get("name") for n in doc["nodes"]],
                             "world": gltf_world_positions(doc)}
        results[name] = entry
    (out_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
