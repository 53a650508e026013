"""Imports mesh files with Blender's own importers and writes each file's polygon count (summed
over the meshes it brings in). Run by tests/test_reconstruct.py:
python tests/blender/reimport_mesh.py OUT.json FILE..."""
import json
import os
import sys

import bpy

IMPORTERS = {".glb": lambda p: bpy.ops.import_scene.gltf(filepath=p),
             ".obj": lambda p: bpy.ops.wm.obj_import(filepath=p),
             ".fbx": lambda p: bpy.ops.import_scene.fbx(filepath=p)}
counts = {}
for path in sys.argv[2:]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    IMPORTERS[os.path.splitext(path)[1]](path)
    meshes = [ob for ob in bpy.context.scene.objects if ob.type == "MESH"]
    counts[os.path.basename(path)] = {"polygons": sum(len(ob.data.polygons) for ob in meshes),
                                      "triangles": all(len(p.vertices) == 3 for ob in meshes for p in ob.data.polygons),
                                      "uv_layers": sum(len(ob.data.uv_layers) for ob in meshes)}
with open(sys.argv[1], "w") as fh:
    json.dump(counts, fh)
