"""Files that are not humanoid rigs, written by Blender's own exporters, for tests/test_user_rig.py:
    python tests/blender/make_plain_files.py CUBE.glb BONES.fbx
CUBE.glb: a mesh without an armature. BONES.fbx: an armature of two bones named 'Bone' and
'Bone.001' (no map names a hips or thighs) with a cube skinned to it."""
import sys

import bpy


def main(cube_path, bones_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=0.5)
    bpy.ops.export_scene.gltf(filepath=cube_path, export_format="GLB")
    arm = bpy.data.armatures.new("Armature")
    arm_ob = bpy.data.objects.new("Armature", arm)
    bpy.context.scene.collection.objects.link(arm_ob)
    bpy.context.view_layer.objects.active = arm_ob
    bpy.ops.object.mode_set(mode="EDIT")
    a = arm.edit_bones.new("Bone")
    a.head, a.tail = (0, 0, 0), (0, 0, 0.5)
    b = arm.edit_bones.new("Bone.001")
    b.head, b.tail, b.parent = (0, 0, 0.5), (0, 0, 1.0), a
    bpy.ops.object.mode_set(mode="OBJECT")
    cube = bpy.context.scene.objects["Cube"]
    g = cube.vertex_groups.new(name="Bone")
    g.add(list(range(len(cube.data.vertices))), 1.0, "REPLACE")
    cube.modifiers.new("armature", "ARMATURE").object = arm_ob
    cube.parent = arm_ob
    bpy.ops.export_scene.fbx(filepath=bones_path, add_leaf_bones=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
