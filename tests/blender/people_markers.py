"""Keypoint oracle for placed people: three mannequins of different heights and builds, each turned
(facing) and moved (position) by people.build_people, posed in frames 0 and 1 (one holds its only
pose). Small emissive spheres go at the joints of Blender's OWN posed armatures (read back from the
bones: pose matrix x rest matrix^-1 x rest point, not from our forward kinematics or placement),
each rendered alone with anti-aliasing; their intensity centroids are written next to the keypoints
each Person gives, projected by our camera.
Run by tests/test_people.py: python tests/blender/people_markers.py OUT.json"""
import json
import sys

import bpy
import numpy as np

from blender_scripts import people as P, scene as S
from pose_factory import spec as spec_mod
from markers import marker_mesh, rendered_centroid  # tests/blender/markers.py, beside this script
from pose_factory.render import cameras, mannequin as mq, rig

SPEC = spec_mod.normalize_spec({"subjects": [
    {"height": 1.6, "build": "slim", "poses": ["waving", "walk_left_step"], "place": {"position": [-0.9, 0.3], "facing": 35}},
    {"height": 1.9, "build": "heavy", "poses": ["t_pose"], "place": {"position": [0.8, 0.6], "facing": -120}},
    {"poses": ["reaching_forward", "a_pose"]}]})
W, H = 480, 320
CAMERA = {"location": [0.6, -5.0, 2.2], "look_at": [0.0, 0.3, 0.9], "roll": 4.0, "focal_length": 35.0,
          "shift": [0.02, -0.03], "orthographic": False, "sensor_width": 36.0, "ortho_scale": 2.5}
MARKERS = list(range(18)) + [mq.KP_LHAND.start + 8, mq.KP_RHAND.start + 8, mq.KP_FACE.start + 30]


def main(out):
    sc = S.reset()
    people = P.build_people(sc, SPEC)
    marker = bpy.data.objects.new("marker", marker_mesh())
    sc.collection.objects.link(marker)
    cam_ob = S.make_camera(sc)
    sc.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    cam = cameras.explicit([CAMERA], W, H)[0]
    S.set_camera(cam_ob, cam, W, H)
    S.setup_shaded_render(sc, W, H, 16)
    sc.render.image_settings.file_format = "PNG"  # 16-bit: sub-pixel centroids
    sc.render.image_settings.color_depth = "16"
    for person in people:
        for ob in person.objects:
            ob.hide_render = True
    results = []
    for f in range(spec_mod.n_frames(SPEC)):
        for person in people:
            person.pose(f)
        for person in people:
            body = person.body
            ours, _ = cameras.project(cam, person.keypoints(f)[MARKERS])
            for i, k in enumerate(MARKERS):
                bone = person.rig.arm_ob.pose.bones[rig.JOINT_NAMES[body.keypoint_joint[k]]]
                m = np.array(person.rig.arm_ob.matrix_world) @ np.array(bone.matrix) @ np.linalg.inv(
                    np.array(bone.bone.matrix_local))
                marker.location = (m @ np.append(body.keypoint_rest[k], 1.0))[:3].tolist()
                found = rendered_centroid(sc, out + ".png", W, H)
                results.append({"frame": f, "person": person.index, "marker": k, "found": found,
                                "ours": ours[i].tolist()})
    with open(out, "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main(sys.argv[1])
