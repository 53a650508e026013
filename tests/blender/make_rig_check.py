"""Makes rigged mannequin files with blender_scripts.make_rig, re-imports each with Blender's own
importers (in a fresh scene) and writes what it measured, for tests/test_make_rig.py:
    python tests/blender/make_rig_check.py OUT_DIR VARIANTS_JSON
VARIANTS_JSON: {"name": {make_rig keyword arguments, "file": "name.ext"}, ...}.
OUT_DIR/results.json: {"name": {"truth": ..., "imported": ...}}."""
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
    else:  # .glb, .vrm: GLB bytes
        bpy.ops.import_scene.gltf(filepath=str(path))
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
        entry = {"truth": truth, "size": path.stat().st_size, "imported": reimport(path)}
        if path.suffix in (".glb", ".vrm"):
            doc, _ = make_rig.read_glb(path)
            entry["gltf"] = {"extensions": doc.get("extensions", {}), "extensionsUsed": doc.get("extensionsUsed", []),
                             "node_names": [n.get("name") for n in doc["nodes"]],
                             "world": gltf_world_positions(doc)}
        results[name] = entry
    (out_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
