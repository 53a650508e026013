"""Imports a BVH clip with Blender's own importer and writes its bones' world matrices.

Run by pose_factory.motion.clip in the worker environment:
    python -m blender_scripts.read_bvh --bvh CLIP.bvh --frames 0,2,4 --feet LeftFoot,RightFoot \
        --clip-frames 120 --out bones.npz
The clip was checked first (pose_factory.motion.bvh). Writes names, parents, rest heads and
rotations, for each asked frame (0-based) every bone's world head and rotation, and for every
frame of the clip the world heads and tails of the --feet bones (where the clip's floor is found).
"""
from __future__ import annotations

import argparse
import sys

import bpy
import numpy as np


def read(path: str, frames: list, feet: list = (), clip_frames: int = 0) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=path, rotate_mode="NATIVE", frame_start=1, use_fps_scale=False,
                            update_scene_fps=False, update_scene_duration=False)
    ob = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    world = np.array(ob.matrix_world)
    bones = list(ob.data.bones)
    names = [b.name for b in bones]
    parents = [names.index(b.parent.name) if b.parent else -1 for b in bones]
    rest = np.array([world @ np.array(b.matrix_local) for b in bones])
    heads, rots = [], []
    scene = bpy.context.scene
    for f in frames:
        scene.frame_set(f + 1)
        m = np.array([world @ np.array(ob.pose.bones[n].matrix) for n in names])
        heads.append(m[:, :3, 3])
        rots.append(m[:, :3, :3])
    foot = [ob.pose.bones[n] for n in feet]
    points = np.zeros((clip_frames, 2 * len(foot), 3), np.float32)
    for f in range(clip_frames):
        scene.frame_set(f + 1)
        points[f] = [world[:3, :3] @ np.array(getattr(b, end)) + world[:3, 3] for b in foot for end in ("head", "tail")]
    return {"names": np.array(names), "parents": np.array(parents), "rest_heads": rest[:, :3, 3],
            "rest_rot": rest[:, :3, :3], "pose_heads": np.array(heads), "pose_rot": np.array(rots), "feet": points}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bvh", required=True)
    ap.add_argument("--frames", required=True, help="comma-separated 0-based frame numbers")
    ap.add_argument("--feet", default="", help="comma-separated bone names: their heads and tails in every frame")
    ap.add_argument("--clip-frames", type=int, default=0, help="the clip's frame count")
    ap.add_argument("--out", required=True, help="the .npz to write")
    a = ap.parse_args(argv)
    data = read(a.bvh, [int(x) for x in a.frames.split(",")], [n for n in a.feet.split(",") if n], a.clip_frames)
    np.savez(a.out, **data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
