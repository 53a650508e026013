"""Test helper (its own process): a mocap-like walk written by Blender's own BVH exporter.

    python tests/blender/make_bvh_walk.py OUT.bvh FRAMES [GLOBAL_SCALE]

The skeleton is built here (not the pack's mannequin), with CMU bone names, its rest pose with the
hips at the origin and the legs hanging below them, as mocap skeletons are (CMU's Hips have OFFSET
0 0 0): the clip's root channels then carry the absolute hip height, about 0.97 m standing. Each
frame swings the legs and arms in the sagittal plane, moves the hips forward (-Y) and lifts them so
that the foot's sole is exactly on the clip's floor, z = 0, as an actor's is: the lowest of the
toe's tip (its End Site), the ball (the toe bone's head) and the heel, a point of the foot bone 7 cm
behind and 7 cm below the ankle, level with the ball at rest (mocap skeletons have no heel bone,
so a BVH file carries no heel: at a heel strike the clip's ball is above its floor, as an actor's).
GLOBAL_SCALE (1 by default) is the exporter's: 100 writes the same clip in centimetres."""
import math
import sys

import bpy
from mathutils import Quaternion, Vector

# name: (parent, head, tail), metres, Blender's Z up, facing -Y (its left is +X)
BONES = {
    "Hips": (None, (0, 0, 0), (0, 0, 0.1)),
    "LowerBack": ("Hips", (0, 0, 0.1), (0, 0, 0.3)),
    "Spine1": ("LowerBack", (0, 0, 0.3), (0, 0, 0.5)),
    "Neck": ("Spine1", (0, 0, 0.5), (0, 0, 0.6)),
    "Head": ("Neck", (0, 0, 0.6), (0, 0, 0.8)),
}
for side, x in (("Left", 1), ("Right", -1)):
    BONES.update({
        f"{side}Arm": ("Spine1", (0.18 * x, 0, 0.47), (0.18 * x, 0, 0.19)),
        f"{side}ForeArm": (f"{side}Arm", (0.18 * x, 0, 0.19), (0.18 * x, 0, -0.06)),
        f"{side}Hand": (f"{side}ForeArm", (0.18 * x, 0, -0.06), (0.18 * x, 0, -0.14)),
        f"{side}UpLeg": ("Hips", (0.09 * x, 0, -0.03), (0.09 * x, 0, -0.46)),
        f"{side}Leg": (f"{side}UpLeg", (0.09 * x, 0, -0.46), (0.09 * x, 0, -0.88)),
        f"{side}Foot": (f"{side}Leg", (0.09 * x, 0, -0.88), (0.09 * x, -0.12, -0.94)),
        f"{side}ToeBase": (f"{side}Foot", (0.09 * x, -0.12, -0.94), (0.09 * x, -0.18, -0.95)),
    })
HEEL = (0.0, 0.07, -0.07)  # from the ankle (the foot bone's head), at rest
STRIDE = 1.3  # metres the hips move forward per gait cycle (two steps)


def angles(phase: float, side: int) -> dict:
    """Sagittal angles (degrees, positive: the bone's far end turns forward, -Y, or up for the foot)
    of one side at a gait phase in 0..1; the other side is half a cycle later."""
    p = 2 * math.pi * (phase + (0.5 if side < 0 else 0.0))
    swing = max(0.0, math.sin(p))  # knee bends while the leg swings forward
    hip, knee = 24 * math.sin(p + 0.6), -55 * swing ** 2
    # the foot flat on the ground while the leg stands (its pitch cancels the leg's), toes up in the swing
    return {"UpLeg": hip, "Leg": knee, "Foot": -(hip + knee) + 12 * swing, "ToeBase": 0.0,
            "Arm": -20 * math.sin(p + 0.6), "ForeArm": 15.0}


def sole(ob, rest_inv) -> float:
    """The height of the feet's lowest point: toe tips, balls, heels."""
    points = []
    for side in ("Left", "Right"):
        foot, toe = ob.pose.bones[f"{side}Foot"], ob.pose.bones[f"{side}ToeBase"]
        heel = foot.matrix @ (rest_inv[foot.name] @ Vector(HEEL)).to_4d()
        points += [toe.head, toe.tail, heel.to_3d()]
    return min((ob.matrix_world @ p).z for p in points)


def main(out, frames, global_scale=1.0):
    frames, global_scale = int(frames), float(global_scale)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    arm = bpy.data.armatures.new("walker")
    ob = bpy.data.objects.new("walker", arm)
    scene.collection.objects.link(ob)
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode="EDIT")
    for name, (parent, head, tail) in BONES.items():
        eb = arm.edit_bones.new(name)
        eb.head, eb.tail = Vector(head), Vector(tail)
        if parent:
            eb.parent = arm.edit_bones[parent]
            eb.use_connect = False
    bpy.ops.object.mode_set(mode="OBJECT")
    rest_inv = {b.name: b.matrix_local.to_3x3().inverted() for b in arm.bones}
    for pb in ob.pose.bones:
        pb.rotation_mode = "QUATERNION"
    lowest = []
    for f in range(frames):
        phase = f / frames
        for side, s in (("Left", 1), ("Right", -1)):
            for part, deg in angles(phase, s).items():
                # every rotation is about the world X axis (the sagittal plane), which the parents'
                # rotations keep: in each bone's own frame that axis is its rest's inverse of X;
                # a positive angle about -X moves a hanging bone's far end towards -Y
                axis = rest_inv[side + part] @ Vector((-1.0, 0.0, 0.0))
                ob.pose.bones[side + part].rotation_quaternion = Quaternion(axis, math.radians(deg))
        hips = ob.pose.bones["Hips"]
        forward = Vector((0.0, -STRIDE * phase, 0.0))
        hips.location = rest_inv["Hips"] @ forward
        bpy.context.view_layer.update()
        hips.location = rest_inv["Hips"] @ (forward - Vector((0.0, 0.0, sole(ob, rest_inv))))  # on the floor
        bpy.context.view_layer.update()
        lowest.append(sole(ob, rest_inv))
        for pb in ob.pose.bones:
            pb.keyframe_insert("rotation_quaternion", frame=f + 1)
            pb.keyframe_insert("location", frame=f + 1)
    assert max(abs(v) for v in lowest) < 1e-6, lowest
    scene.frame_start, scene.frame_end = 1, frames
    ob.select_set(True)
    bpy.ops.export_anim.bvh(filepath=out, frame_start=1, frame_end=frames, global_scale=global_scale)


if __name__ == "__main__":
    main(*sys.argv[1:4])
