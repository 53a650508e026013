"""Foot keypoint oracle: the mannequin standing, sitting and lying on its back, seen from the front,
the side and below. A small emissive sphere goes at each foot point's vertex of Blender's OWN
deformed foot mesh (the evaluated mesh of the foot object, read back from Blender after its armature
posed it, not from our forward kinematics), rendered alone with anti-aliasing; its intensity
centroid is written next to the keypoint the Person gives, projected by our camera.
Run by tests/test_feet.py: python tests/blender/feet_markers.py OUT.json"""
import json
import sys

import bpy
import numpy as np

from blender_scripts import people as P, scene as S
from markers import marker_mesh, rendered_centroid  # tests/blender/markers.py, beside this script
from pose_factory import spec as spec_mod
from pose_factory.render import cameras, mannequin as mq

POSES = ["standing", "sitting", "lying_back"]
SPEC = spec_mod.normalize_spec({"subjects": [{"poses": POSES}]})
W, H = 400, 400
VIEWS = {"front": [0.0, -3.0, 0.3], "side": [3.0, 0.2, 0.2], "below": [0.3, -0.6, -3.0]}


def main(out):
    sc = S.reset()
    (person,) = P.build_people(sc, SPEC)
    marker = bpy.data.objects.new("marker", marker_mesh())
    sc.collection.objects.link(marker)
    cam_ob = S.make_camera(sc)
    sc.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    S.setup_shaded_render(sc, W, H, 16)
    sc.render.image_settings.file_format = "PNG"  # 16-bit: sub-pixel centroids
    sc.render.image_settings.color_depth = "16"
    feet = {ob.name.split(".")[0]: ob for ob in person.objects if ob.name.startswith("foot_")}
    results = []
    for f, pose in enumerate(POSES):
        person.pose(f)
        for ob in person.objects:
            ob.hide_render = False
        dg = bpy.context.evaluated_depsgraph_get()
        truth = []
        for name in mq.FOOT_KEYPOINTS:
            ob = feet[f"foot_{name[0]}"].evaluated_get(dg)
            v = ob.data.vertices[mq.foot_vertices(name[0])[name[2:]]].co
            truth.append((np.array(ob.matrix_world) @ np.append(np.array(v), 1.0))[:3])
        for ob in person.objects:
            ob.hide_render = True
        kp = person.keypoints(f)
        centre = kp[mq.KP_FEET].mean(axis=0)
        for view, offset in VIEWS.items():
            cam = cameras.explicit([{"location": (centre + offset).tolist(), "look_at": centre.tolist(), "roll": 0.0,
                                     "focal_length": 50.0, "shift": [0.0, 0.0], "orthographic": False,
                                     "sensor_width": 36.0, "ortho_scale": 2.5}], W, H)[0]
            S.set_camera(cam_ob, cam, W, H)
            ours, _ = cameras.project(cam, kp[mq.KP_FEET])
            for i, name in enumerate(mq.FOOT_KEYPOINTS):
                marker.location = truth[i].tolist()
                found = rendered_centroid(sc, out + ".png", W, H)
                results.append({"pose": pose, "view": view, "point": name, "found": found, "ours": ours[i].tolist(),
                                "truth": truth[i].tolist(), "keypoint": kp[mq.KP_FEET][i].tolist()})
    with open(out, "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main(sys.argv[1])
