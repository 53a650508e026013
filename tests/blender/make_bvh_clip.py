"""Test helper (its own process): animates the mannequin through pose entries, one per frame,
renames its bones (a naming map {joint: bone}) and writes the clip with Blender's BVH exporter.

    python tests/blender/make_bvh_clip.py JOB.json OUT.bvh
JOB: {"height": 1.75, "poses": [entry, ...], "rename": {joint: bone}}"""
import json
import sys

import bpy

from blender_scripts import scene as S
from pose_factory.render import mannequin as mq
from pose_factory.render import poses


def main(job_path, out):
    with open(job_path) as fh:
        job = json.load(fh)
    scene = S.reset()
    body = mq.build(job["height"], "average")
    rig_b = S.Rig(scene, body)
    ob = rig_b.arm_ob
    for f, entry in enumerate(job["poses"], 1):
        rig_b.pose(poses.pose_body(body, entry))
        for pb in ob.pose.bones:
            pb.keyframe_insert("rotation_quaternion", frame=f)
            pb.keyframe_insert("location", frame=f)
    for joint, bone in job["rename"].items():
        ob.data.bones[joint].name = bone
    scene.frame_start, scene.frame_end = 1, len(job["poses"])
    for o in scene.objects:
        o.select_set(o == ob)
    bpy.context.view_layer.objects.active = ob
    bpy.ops.export_anim.bvh(filepath=out, frame_start=1, frame_end=len(job["poses"]))


if __name__ == "__main__":
    main(*sys.argv[1:3])
