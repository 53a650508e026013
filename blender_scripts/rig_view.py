"""A user's rig as the 3D viewer draws it: imports one rig file in its own process (as inspect_rig.py
does, with a time limit set by the caller, pose_factory.viewer.rigview) and writes, as JSON, what the
viewer needs to pose it without Blender: the measured rest (retarget.RigRest: bones, rest matrices,
vertices and each vertex's dominant bone), the bones the map found, the eyes' surface points, and the
meshes' triangles (vertex indices into the rest vertices, meshes in the order of the rest's).

    python -m blender_scripts.rig_view --file F --format glb --bone-map '"auto"' --height '"auto"' --out OUT.json
"""
from __future__ import annotations

import sys



def view_data(path: str, fmt: str, bone_map="auto", height="auto") -> dict:
    from blender_scripts import scene as S, user_rig

    S.reset()
    lr = user_rig.load_rig(path, fmt, bone_map, height)
    tris = user_rig.mesh_triangles(lr.meshes)
    rt = lr.rt
    eyes = {k: (rt.rest.matrices[rt.bone[k]] @ v)[:3].tolist() for k, v in rt.eye_local.items()}
    return {"rest": lr.rest.to_json(), "found": dict(rt.found), "eye_points": eyes,
            "faces": tris.astype(int).tolist()}


def main(argv=None) -> int:
    from blender_scripts import inspect_rig

    return inspect_rig.run(argv, lambda a: view_data(a.file, a.format, a.bone_map, a.height))


if __name__ == "__main__":
    sys.exit(main())
