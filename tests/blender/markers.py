"""Keypoint oracle: small emissive spheres placed at the joints of Blender's own posed armature
(read back from the bones, not from our forward kinematics), each rendered alone with
anti-aliasing; their intensity centroids are written next to the keypoints our code projects.
Run by tests/test_render_exact.py: python tests/blender/markers.py OUT.json [PNG] [CONFIGS.json]
(CONFIGS.json: a list like CONFIGS, e.g. cameras made by tests/test_viewer.py from core's LOAD3D_CAMERA)."""
import json
import sys

import bpy
import numpy as np

from blender_scripts import scene as S
from pose_factory.render import cameras, mannequin as mq, rig

ANGLES = {"root": {"yaw": 20}, "l_shoulder": {"abduct": 70, "flex": 20}, "r_shoulder": {"flex": 60, "twist": 20},
          "r_elbow": {"flex": 70}, "l_elbow": {"flex": 30}, "l_hip": {"flex": 30}, "l_knee": {"flex": 45},
          "neck": {"twist": 20}, "l_index1": {"curl": 30}, "r_wrist": {"flex": 20}}
CONFIGS = [  # non-square, shifted, rolled, not axis-aligned; also portrait and orthographic
    {"size": (480, 320), "location": [2.3, -3.1, 1.9], "look_at": [0.05, 0.1, 1.0], "roll": 12.0,
     "focal_length": 38.0, "shift": [0.06, -0.04], "orthographic": False},
    {"size": (320, 480), "location": [-3.4, -2.2, 0.6], "look_at": [0.0, 0.0, 0.95], "roll": -7.0,
     "focal_length": 55.0, "shift": [-0.05, 0.08], "orthographic": False},
    {"size": (400, 400), "location": [1.0, -4.0, 2.5], "look_at": [0.0, 0.0, 1.0], "roll": 25.0,
     "focal_length": 50.0, "shift": [0.03, 0.02], "orthographic": True, "ortho_scale": 2.4},
]
MARKERS = list(range(18)) + [mq.KP_LHAND.start + i for i in (4, 8, 12, 20)] + [mq.KP_RHAND.start + 8] + \
          [mq.KP_FACE.start + i for i in (8, 30, 36, 45, 57)]


def marker_mesh():
    """A small emissive sphere (6 mm), the marker every oracle renders."""
    import bmesh

    emit = bpy.data.materials.new("marker")
    emit.use_nodes = True
    nodes = emit.node_tree.nodes
    nodes.clear()
    e = nodes.new("ShaderNodeEmission")
    e.inputs["Strength"].default_value = 1.0
    o = nodes.new("ShaderNodeOutputMaterial")
    emit.node_tree.links.new(e.outputs[0], o.inputs[0])
    mesh = bpy.data.meshes.new("marker")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=24, v_segments=12, radius=0.006)
    bm.to_mesh(mesh)
    mesh.materials.append(emit)
    return mesh


def rendered_centroid(sc, path, W, H):
    """Renders sc to path (a 16-bit PNG) and returns the intensity centroid [x, y] of what it shows
    (None when nothing is seen)."""
    S.render_to(sc, path)
    img = bpy.data.images.load(sc.render.filepath, check_existing=False)
    px = np.array(img.pixels[:]).reshape(H, W, 4)[::-1, :, 0]  # Blender's rows go bottom-up
    bpy.data.images.remove(img)
    ys, xs = np.mgrid[0:H, 0:W]
    w = px.sum()
    return [float((px * xs).sum() / w), float((px * ys).sum() / w)] if w > 0 else None


def main(out, configs=CONFIGS):
    body = mq.build(1.75, "average")
    posed = rig.forward_kinematics(body.rest, ANGLES, offset=(0.1, -0.05, 0.0))
    sc = S.reset()
    bl_rig = S.Rig(sc, body)
    bl_rig.pose(posed)
    for ob in bl_rig.parts:
        ob.hide_render = True
    # marker positions from Blender's evaluated bones: pose matrix × rest matrix⁻¹ × rest point
    marker_pos = []
    for k in MARKERS:
        name = rig.JOINT_NAMES[body.keypoint_joint[k]]
        bone = bl_rig.arm_ob.pose.bones[name]
        m = np.array(bone.matrix) @ np.linalg.inv(np.array(bone.bone.matrix_local))
        marker_pos.append((m @ np.append(body.keypoint_rest[k], 1.0))[:3])
    mesh = marker_mesh()
    obs = []
    for p in marker_pos:
        ob = bpy.data.objects.new("m", mesh)
        ob.location = p.tolist()
        sc.collection.objects.link(ob)
        obs.append(ob)
    cam_ob = S.make_camera(sc)
    sc.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    results = []
    ours = mq.posed_keypoints(body, posed)[MARKERS]
    for cfg in configs:
        W, H = cfg["size"]
        cam = cameras.explicit([dict(cfg, sensor_width=36.0, ortho_scale=cfg.get("ortho_scale", 2.5))], W, H)[0]
        S.set_camera(cam_ob, cam, W, H)
        S.setup_shaded_render(sc, W, H, 16)
        sc.render.image_settings.file_format = "PNG"  # 16-bit: sub-pixel centroids
        sc.render.image_settings.color_depth = "16"
        xy, _ = cameras.project(cam, ours)
        for i, ob in enumerate(obs):
            for j, other in enumerate(obs):
                other.hide_render = j != i
            found = rendered_centroid(sc, "/tmp/_marker.png" if len(sys.argv) < 3 else sys.argv[2], W, H)
            results.append({"config": cfg, "marker": MARKERS[i], "found": found, "ours": xy[i].tolist(),
                            "world": marker_pos[i].tolist()})
    with open(out, "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main(sys.argv[1], json.load(open(sys.argv[3])) if len(sys.argv) > 3 else CONFIGS)
