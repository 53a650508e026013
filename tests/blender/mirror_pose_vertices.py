"""Poses the mannequin in Blender with each named preset and its mirror, and writes how far the
deformed mesh Blender renders for the mirrored pose is from the mirror image (x → -x) of the
original's. Run by tests/test_mirror_symmetry.py:
python tests/blender/mirror_pose_vertices.py OUT.json PRESET [PRESET ...]"""
import json
import sys

import bpy
import numpy as np
from scipy.spatial import cKDTree

from blender_scripts import scene as S
from pose_factory import spec as spec_mod
from pose_factory.render import mannequin as mq, poses

spec = spec_mod.normalize_spec({"schema_version": "1.0", "kind": "pose_batch", "project": "mirror", "subjects": [
    {"type": "mannequin", "poses": [{"preset": p, "mirror": m} for p in sys.argv[2:] for m in (False, True)]}]})
subject = spec["subjects"][0]
body = mq.build(subject["height"], subject["build"])
rig = S.Rig(S.reset(), body)


def deformed_vertices():
    depsgraph = bpy.context.evaluated_depsgraph_get()
    out = []
    for ob in rig.parts:
        ev = ob.evaluated_get(depsgraph)
        mesh = ev.to_mesh()
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
        ev.to_mesh_clear()
        assert np.array(ev.matrix_world).tolist() == np.eye(4).tolist()  # the parts sit at the origin
        out.append(co.reshape(-1, 3))
    return np.concatenate(out)


rows = []
for i, preset in enumerate(sys.argv[2:]):
    meshes = []
    for entry in subject["poses"][2 * i:2 * i + 2]:
        rig.pose(poses.pose_body(body, entry))
        meshes.append(deformed_vertices())
    original, mirrored = meshes
    dist, _ = cKDTree(mirrored).query(original * np.float32([-1, 1, 1]))
    rows.append({"preset": preset, "vertices": len(original), "max_distance_m": float(dist.max())})
with open(sys.argv[1], "w") as fh:
    json.dump(rows, fh)
