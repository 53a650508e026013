"""A user's rig as the 3D viewer draws it: imports one rig file in its own process (as inspect_rig.py
does, with a time limit set by the caller, pose_factory.viewer.rigview) and writes, as JSON, what the
viewer needs to pose it without Blender: the measured rest (retarget.RigRest: bones, rest matrices,
vertices and each vertex's dominant bone), the bones the map found, the eyes' surface points, and the
meshes' triangles (vertex indices into the rest vertices, meshes in the order of the rest's).

    python -m blender_scripts.rig_view --file F --format glb --bone-map '"auto"' --height '"auto"' --out OUT.json
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def view_data(path: str, fmt: str, bone_map="auto", height="auto") -> dict:
    from blender_scripts import scene as S, user_rig

    S.reset()
    lr = user_rig.load_rig(path, fmt, bone_map, height)
    tris, base = [], 0
    for ob in lr.meshes:
        me = ob.data
        me.calc_loop_triangles()
        t = np.empty(len(me.loop_triangles) * 3, np.int64)
        me.loop_triangles.foreach_get("vertices", t)
        tris.append(t.reshape(-1, 3) + base)
        base += len(me.vertices)
    rt = lr.rt
    eyes = {k: (rt.rest.matrices[rt.bone[k]] @ v)[:3].tolist() for k, v in rt.eye_local.items()}
    return {"rest": lr.rest.to_json(), "found": dict(rt.found), "eye_points": eyes,
            "faces": np.concatenate(tris).astype(int).tolist() if tris else []}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    ap.add_argument("--format", required=True)
    ap.add_argument("--bone-map", default='"auto"')
    ap.add_argument("--height", default='"auto"')
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    from pose_factory.errors import SpecError

    try:
        result = view_data(a.file, a.format, json.loads(a.bone_map), json.loads(a.height))
    except SpecError as e:
        result = {"error": e.message, "field": e.field, "allowed": e.allowed}
    with open(a.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
