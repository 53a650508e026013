"""Writes a mesh (an .npz of Z-up vertices, triangle faces and optional per-vertex UVs) as FBX
with Blender's own exporter. Run by pose_factory.mesh.postprocess.export_fbx:
    python -m blender_scripts.export_mesh MESH.npz OUT.fbx"""
import sys

import bpy
import numpy as np

from blender_scripts import scene as S


def main(src, dst):
    S.reset()
    with np.load(src) as z:
        v, f, uv = z["vertices"], z["faces"], z["uvs"]
    mesh = bpy.data.meshes.new("mesh")
    mesh.from_pydata(v.tolist(), [], f.tolist())
    mesh.validate()
    if len(uv):
        layer = mesh.uv_layers.new(name="UVMap")
        loop_vertices = np.empty(len(mesh.loops), np.int64)
        mesh.loops.foreach_get("vertex_index", loop_vertices)
        layer.data.foreach_set("uv", uv[loop_vertices].astype(np.float32).ravel())
    mesh.shade_smooth()
    ob = bpy.data.objects.new("mesh", mesh)
    bpy.context.scene.collection.objects.link(ob)
    bpy.ops.export_scene.fbx(filepath=dst, use_selection=False, object_types={"MESH"}, add_leaf_bones=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
