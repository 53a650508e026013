"""Builds the mannequin in Blender and writes whether every part's polygons are exactly our
triangles (Part.triangles), in order. Run by tests/test_mirror_symmetry.py:
python tests/blender/mesh_triangles.py OUT.json"""
import json
import sys

import numpy as np

from blender_scripts import scene as S
from pose_factory.render import mannequin as mq

body = mq.build()
rig = S.Rig(S.reset(), body)
rows = []
for part, ob in zip(body.parts, rig.parts):
    tris, materials = part.triangles()
    polys = [list(p.vertices) for p in ob.data.polygons]
    rows.append({"part": part.name, "same": polys == tris.tolist(),
                 "materials": [p.material_index for p in ob.data.polygons] == materials.tolist()})
with open(sys.argv[1], "w") as fh:
    json.dump(rows, fh)
