"""Builds and drives the Blender scene: the mannequin (armature + skinned part meshes), the
camera, the lights and the two render set-ups (exact data passes, shaded reference)."""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from pose_factory.render import mannequin as mq
from pose_factory.render import rig
from pose_factory.render.passes import SHADED_BACKGROUND

CLAY = (0.86, 0.76, 0.68, 1.0)
FEATURES = (0.16, 0.11, 0.09, 1.0)  # eyes, brows, mouth, hair


def reset():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.view_settings.view_transform = "Standard"  # AgX would tone-map everything we write
    scene.view_settings.look = "None"
    scene.render.resolution_percentage = 100
    scene.render.use_persistent_data = True  # keep the BVH between views of one frame
    scene.render.use_compositing = False
    scene.render.use_sequencer = False
    for attr in dir(scene.render):  # no date or render time in the PNGs: same spec, same bytes
        if attr.startswith("use_stamp"):
            setattr(scene.render, attr, False)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (*SHADED_BACKGROUND, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
    world.cycles.sampling_method = "NONE"  # nothing is lit by it: skip its importance map on every reset
    scene.world = world
    return scene


def use_gpu_if_asked(scene, device: str):
    """'auto' takes a GPU when Cycles finds one (a GPU worker), else the CPU."""
    if device == "cpu":
        return "CPU"
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for kind in ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI"):
        try:
            prefs.compute_device_type = kind
        except TypeError:
            continue
        prefs.get_devices()
        gpus = [d for d in prefs.devices if d.type == kind]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == kind
            scene.cycles.device = "GPU"
            return kind
    if device == "gpu":
        raise RuntimeError("render.device is 'gpu' but Cycles found no GPU on this machine")
    return "CPU"


def _math(nodes, links, op, a, b=None):
    node = nodes.new("ShaderNodeMath")
    node.operation = op
    for i, v in enumerate((a, b)):
        if v is None:
            continue
        if isinstance(v, (int, float)):
            node.inputs[i].default_value = v
        else:
            links.new(v, node.inputs[i])
    return node.outputs[0]


def _material(name, colour):
    """Clay lit like a matcap: shading computed from the camera-space normal and emitted, so it
    is noise-free at any sample count (samples only anti-alias the edges) and every view is lit
    the same way. A path-traced clay needed denoising, which took 2.5 s per image on 2 cores."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    geo = nodes.new("ShaderNodeNewGeometry")
    to_cam = nodes.new("ShaderNodeVectorTransform")
    to_cam.vector_type, to_cam.convert_from, to_cam.convert_to = "NORMAL", "WORLD", "CAMERA"
    links.new(geo.outputs["Normal"], to_cam.inputs[0])
    n = to_cam.outputs[0]  # Cycles' camera space: x right, y up, z away from the viewer

    def lambert(direction, weight, wrap=0.0):
        dot = nodes.new("ShaderNodeVectorMath")
        dot.operation = "DOT_PRODUCT"
        links.new(n, dot.inputs[0])
        d = np.asarray(direction, float)
        dot.inputs[1].default_value = (d / np.linalg.norm(d)).tolist()
        v = _math(nodes, links, "MULTIPLY_ADD", dot.outputs["Value"], 1 - wrap)
        v.node.inputs[2].default_value = wrap
        v = _math(nodes, links, "MAXIMUM", v, 0.0)
        return _math(nodes, links, "MULTIPLY", v, weight)

    key = lambert((-0.45, 0.55, -0.7), 0.72, wrap=0.25)
    fill = lambert((0.7, -0.1, -0.5), 0.22)
    top = lambert((0.0, 1.0, -0.2), 0.12)
    total = _math(nodes, links, "ADD", _math(nodes, links, "ADD", key, fill), top)
    total = _math(nodes, links, "ADD", total, 0.16)  # ambient
    tint = nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.blend_type = "MULTIPLY"
    tint.inputs["Factor"].default_value = 1.0
    tint.inputs[6].default_value = colour
    links.new(total, tint.inputs[7])
    emit = nodes.new("ShaderNodeEmission")
    links.new(tint.outputs[2], emit.inputs["Color"])
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(emit.outputs[0], out.inputs["Surface"])
    return mat


def clay_material(name="clay"):
    """A new clay material (a person's own: its pass_index marks the person)."""
    return _material(name, CLAY)


MESH_LABEL = 1  # a mesh render's mesh's id in the parts (object index) pass


def add_mesh(scene, vertices, faces, smooth=True, name="mesh", label=MESH_LABEL):
    """The mesh as a clay object whose object-index pass is label (a pose scene's props use it too)."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.asarray(vertices, float).tolist(), [], np.asarray(faces, int).tolist())
    mesh.validate()
    if smooth:
        mesh.shade_smooth()
    mesh.materials.append(_material("clay", CLAY))
    ob = bpy.data.objects.new(name, mesh)
    ob.pass_index = label
    scene.collection.objects.link(ob)
    return ob


class Rig:
    """The mannequin in Blender: one armature, one mesh object per body part."""

    def __init__(self, scene, body: mq.Mannequin):
        self.body = body
        self.arm_ob = self._armature(scene, body.rest)
        materials = [_material("clay", CLAY), _material("features", FEATURES)]
        self.parts = []
        for part in body.parts:
            mesh = bpy.data.meshes.new(part.name)
            triangles, tri_materials = part.triangles()  # split by us, mirror-symmetrically
            mesh.from_pydata(part.verts.tolist(), [], triangles.tolist())
            mesh.validate()
            mesh.shade_smooth()
            for mat in materials:
                mesh.materials.append(mat)
            mesh.polygons.foreach_set("material_index", tri_materials)
            ob = bpy.data.objects.new(part.name, mesh)
            ob.pass_index = mq.PART_LABEL[part.name]  # the label in the object-index pass
            for j in np.unique(part.joints):
                group = ob.vertex_groups.new(name=rig.JOINT_NAMES[j])
                group.add(np.nonzero(part.joints == j)[0].tolist(), 1.0, "REPLACE")
            mod = ob.modifiers.new("armature", "ARMATURE")
            mod.object = self.arm_ob
            scene.collection.objects.link(ob)
            self.parts.append(ob)

    def _armature(self, scene, rest):
        arm = bpy.data.armatures.new("mannequin")
        ob = bpy.data.objects.new("mannequin", arm)
        scene.collection.objects.link(ob)
        bpy.context.view_layer.objects.active = ob
        bpy.ops.object.mode_set(mode="EDIT")
        children = {}
        for i, n in enumerate(rig.JOINT_NAMES):
            if rig.PARENT_INDEX[i] >= 0:
                children.setdefault(rig.PARENT_INDEX[i], []).append(i)
        for i, name in enumerate(rig.JOINT_NAMES):
            bone = arm.edit_bones.new(name)
            bone.head = rest[i].tolist()
            kids = children.get(i)
            tail = rest[kids[0]] if kids and name != "root" else rest[i] + [0, 0, 0.05]
            if np.linalg.norm(tail - rest[i]) < 1e-4:
                tail = rest[i] + [0, 0, 0.02]
            bone.tail = tail.tolist()
            if rig.PARENT_INDEX[i] >= 0:
                bone.parent = arm.edit_bones[rig.JOINT_NAMES[rig.PARENT_INDEX[i]]]
        bpy.ops.object.mode_set(mode="OBJECT")
        self.rest_mats = [np.array(arm.bones[n].matrix_local) for n in rig.JOINT_NAMES]
        return ob

    def pose(self, posed: rig.Posed):
        """Set every bone so that Blender's armature equals our forward kinematics exactly."""
        pose_mats = []
        for i, name in enumerate(rig.JOINT_NAMES):
            m = np.eye(4)
            m[:3, :3] = posed.rotations[i] @ self.rest_mats[i][:3, :3]
            m[:3, 3] = posed.positions[i]
            pose_mats.append(m)
            p = rig.PARENT_INDEX[i]
            if p < 0:
                basis = np.linalg.inv(self.rest_mats[i]) @ m
            else:
                rel = np.linalg.inv(self.rest_mats[p]) @ self.rest_mats[i]
                basis = np.linalg.inv(rel) @ np.linalg.inv(pose_mats[p]) @ m
            pb = self.arm_ob.pose.bones[name]
            pb.rotation_mode = "QUATERNION"
            pb.matrix_basis = Matrix(basis.tolist())
        bpy.context.view_layer.update()

    def bone_heads(self):
        """World positions of the posed bones' heads, read back from Blender."""
        return np.array([np.array(self.arm_ob.pose.bones[n].head) for n in rig.JOINT_NAMES])


def make_camera(scene):
    cam = bpy.data.cameras.new("camera")
    ob = bpy.data.objects.new("camera", cam)
    scene.collection.objects.link(ob)
    scene.camera = ob
    return ob


def set_camera(ob, cam: dict, width: int, height: int):
    """cam: a camera dict from pose_factory.render.cameras (world rotation, location, intrinsics)."""
    data = ob.data
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = cam["sensor_width"]
    data.clip_start = 0.01
    data.clip_end = 1000.0
    if cam["orthographic"]:
        data.type = "ORTHO"
        data.ortho_scale = cam["ortho_scale"]
    else:
        data.type = "PERSP"
        data.lens = cam["focal_length"]
    # Blender's shift is a fraction of the larger image side
    data.shift_x, data.shift_y = cam["shift"]
    m = np.eye(4)
    m[:3, :3] = np.array(cam["rotation"])
    m[:3, 3] = cam["location"]
    ob.matrix_world = Matrix(m.tolist())


def setup_data_render(scene, width, height):
    """1 sample through the pixel centre: exact depth, normal and part index per pixel, and the
    clay's colour there (Combined), from which the default shaded reference is made."""
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.pixel_filter_type = "BOX"
    scene.cycles.filter_width = 0.01  # every ray through the pixel centre
    scene.cycles.max_bounces = 0
    scene.render.film_transparent = True
    layer = scene.view_layers[0]
    layer.use_pass_combined = True
    layer.use_pass_z = layer.use_pass_normal = layer.use_pass_object_index = True
    fmt = scene.render.image_settings
    fmt.media_type = "MULTI_LAYER_IMAGE"
    fmt.file_format = "OPEN_EXR_MULTILAYER"
    fmt.color_depth = "32"
    fmt.exr_codec = "NONE"  # a scratch file read back at once: no time spent compressing


def setup_shaded_render(scene, width, height, samples):
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False  # the clay is emissive: nothing to denoise
    scene.cycles.use_adaptive_sampling = False
    # a box filter keeps each sample in its own pixel: 4 samples give clean edges
    scene.cycles.pixel_filter_type = "BOX"
    scene.cycles.filter_width = 1.0
    scene.cycles.max_bounces = 0
    scene.render.film_transparent = False
    fmt = scene.render.image_settings
    fmt.media_type = "IMAGE"
    fmt.file_format = "BMP"  # a scratch file we re-encode: Blender's PNG writer costs ~30 ms
    fmt.color_mode = "RGB"


def render_to(scene, path: str):
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)


def use_instance_pass(scene):
    """Cycles' material index pass on: each person's materials carry its instance (k + 1)."""
    scene.view_layers[0].use_pass_material_index = True


def read_data_passes(path, instance=False):
    """(depth, world normal, object index, combined RGBA) of a data render; with instance, also
    the material index pass (use_instance_pass) as uint8."""
    import OpenEXR

    with OpenEXR.File(path, separate_channels=True) as f:
        ch = {}
        for part in f.parts:
            ch.update(part.channels)
    depth = np.array(ch["ViewLayer.Depth.Z"].pixels, np.float64)
    normal = np.stack([ch[f"ViewLayer.Normal.{c}"].pixels for c in "XYZ"], -1).astype(np.float64)
    index = np.rint(ch["ViewLayer.Object Index.X"].pixels).astype(np.uint8)
    rgba = np.stack([ch[f"ViewLayer.Combined.{c}"].pixels for c in "RGBA"], -1)
    if instance:
        return depth, normal, index, rgba, np.rint(ch["ViewLayer.Material Index.X"].pixels).astype(np.uint8)
    return depth, normal, index, rgba
