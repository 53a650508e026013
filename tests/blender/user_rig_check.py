"""Users' rigs through our import path, against the mannequin they were made from: rigged files are
written by blender_scripts.make_rig (Blender's own FBX/glTF exporters, VRM as GLB with the humanoid
extension), re-imported by user_rig.RigPerson in a fresh scene and posed with presets; their
keypoints are written next to the mannequin's own (our forward kinematics on the rig before export)
and both are projected by the same cameras at 512x512. The marker case puts small emissive spheres
at the heads of Blender's own posed bones (read from the armature, not from our keypoints), renders
each alone and writes its intensity centroid next to our projected keypoint.
Run by tests/test_user_rig.py: python tests/blender/user_rig_check.py OUT_DIR CASES.json
CASES: {"name": {"make": {make_rig keywords, "file": "x.fbx"}, "presets": [...], "bone_map": ... ("from truth":
the make_rig truth's joints as a custom map),
"height": ..., "place": a subject's place, "markers": bool, "as_gltf": bool (the GLB rewritten as a self-contained .gltf)}}. OUT_DIR/results.json: {"name": {...}}."""
import base64
import json
import sys
from pathlib import Path

import bpy
import numpy as np

from blender_scripts import make_rig, scene as S, user_rig
from pose_factory import glb
from pose_factory.render import cameras, mannequin as mq, poses, rig
from markers import marker_mesh, rendered_centroid  # tests/blender/markers.py, beside this script

W = H = 512
CAMERAS = [  # front, side, above at three quarters, and behind-left: every keypoint seen in some view
    {"location": [0.3, -4.2, 1.3], "look_at": [0.0, 0.0, 0.95], "roll": 0.0, "focal_length": 45.0},
    {"location": [4.2, 0.2, 1.1], "look_at": [0.0, 0.0, 0.95], "roll": 0.0, "focal_length": 45.0},
    {"location": [-2.6, -2.8, 2.6], "look_at": [0.0, 0.0, 0.9], "roll": 6.0, "focal_length": 40.0},
    {"location": [-2.0, 3.5, 1.6], "look_at": [0.0, 0.0, 1.0], "roll": 0.0, "focal_length": 45.0},
]
CAMS = cameras.explicit([dict(c, orthographic=False, shift=[0.0, 0.0], sensor_width=36.0, ortho_scale=2.5)
                         for c in CAMERAS], W, H)


def project(points):
    return [cameras.project(cam, np.nan_to_num(points))[0].tolist() for cam in CAMS]


def markers(sc, person, out_png):
    """Markers at the heads of the posed bones mapped to body joints, from Blender's armature."""
    arm = person.rig.arm
    marker = bpy.data.objects.new("marker", marker_mesh())
    sc.collection.objects.link(marker)
    for ob in person.objects:
        ob.hide_render = True
    cam_ob = S.make_camera(sc)
    sc.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    S.setup_shaded_render(sc, W, H, 16)
    sc.render.image_settings.file_format = "PNG"  # 16-bit: sub-pixel centroids
    sc.render.image_settings.color_depth = "16"
    kp = person.keypoints(0)
    rows = []
    body = [n for n in mq.BODY_KEYPOINTS if n in rig.JOINT_NAMES and n in person.rig.rt.bone]  # mapped joints
    hand = [("l_hand_index1", "l_index1"), ("r_hand_middle2", "r_middle2"), ("l_hand_thumb3", "l_thumb3")]
    names = mq.keypoint_names()
    for cam in CAMS[:2]:
        S.set_camera(cam_ob, cam, W, H)
        for kp_name, joint in [(n, n) for n in body] + hand:
            at = ["l_shoulder", "r_shoulder"] if joint == "neck" else [joint]  # OpenPose's neck: between the shoulders
            heads = [np.array(arm.pose.bones[person.rig.rt.found[j]].head) for j in at]
            marker.location = (np.array(arm.matrix_world) @ np.append(np.mean(heads, axis=0), 1.0))[:3].tolist()
            found = rendered_centroid(sc, out_png, W, H)
            ours = cameras.project(cam, kp[[names.index(kp_name)]])[0][0].tolist()
            rows.append({"keypoint": kp_name, "found": found, "ours": ours})
    return rows


def run_case(name, case, folder: Path) -> dict:
    make = dict(case["make"])
    path = folder / make.pop("file")
    S.reset()
    truth = make_rig.make_rig(path, **make)
    if case.get("as_gltf"):  # the GLB as a self-contained .gltf: its BIN chunk a data: URI
        doc, binary = glb.read(path.read_bytes())
        doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode()
        path = path.with_suffix(".gltf")
        path.write_text(json.dumps(doc))
    fmt = path.suffix.lstrip(".")
    result = {"truth_triangles": truth.get("triangles"), "presets": {}}
    body = mq.build(make.get("height", 1.75), make.get("build", "average"))
    entries = [poses.normalize_pose_entry(p, "pose") for p in case["presets"]]
    sc = S.reset()
    bone_map = case.get("bone_map", "auto")
    if bone_map == "from truth":  # a custom map: the file's own bone at each of our joints, as a user would write it
        bone_map = {j: b for j, b in truth["joints"].items() if j in rig.JOINT_NAMES}
    subject = {"type": "rig", "rig": {"sha256": "0" * 64, "format": fmt}, "bone_map": bone_map,
               "height": case.get("height", "auto"), "poses": entries, **({"place": case["place"]} if "place" in case else {})}
    person = user_rig.RigPerson(sc, subject, str(path), 0)
    result["report"] = person.report
    result["objects"] = sorted({ob.pass_index for ob in person.objects})
    result["estimated"] = person.estimated().tolist()
    result["radius_scale"] = float(person.radius[2] / mq.visibility_rules()[0][2])
    for f, (preset, entry) in enumerate(zip(case["presets"], entries)):
        kp = person.keypoints(f)
        want = mq.posed_keypoints(body, poses.placed(poses.pose_body(body, entry), case.get("place")))
        lowest = float(user_rig.deformed_vertices(person.objects)[:, 2].min())
        result["presets"][preset] = {"ours": kp.tolist(), "mannequin": want.tolist(), "px": project(kp),
                                     "px_mannequin": project(want), "lowest": lowest}
    if case.get("markers"):
        person.pose(0)
        result["markers"] = markers(sc, person, str(folder / f"{name}_marker.png"))
    return result


def main(out_dir, cases_path):
    folder = Path(out_dir)
    cases = json.loads(Path(cases_path).read_text())
    results = {}
    for name, case in cases.items():
        results[name] = run_case(name, case, folder)
    (folder / "results.json").write_text(json.dumps(results, allow_nan=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
