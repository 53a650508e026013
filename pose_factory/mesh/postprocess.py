"""Post-processing and export of a reconstructed mesh with well-kept libraries: trimesh (repair,
Taubin smoothing, normals, GLB/OBJ writing), fast-simplification (quadric decimation to a face
count), xatlas (a UV atlas), and Blender for FBX (blender_scripts/export_mesh.py). All imported
when used (worker environment)."""
from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np

from .. import worker_process
from ..errors import SpecError
from . import meshdata

FORMATS = ("glb", "obj", "fbx")
MAX_SMOOTH = 100


def smooth(vertices, faces, iterations: int):
    """Taubin smoothing (shrinks far less than Laplacian): the voxel staircase of a visual hull goes."""
    import trimesh

    m = trimesh.Trimesh(vertices, faces, process=False)
    if iterations:
        trimesh.smoothing.filter_taubin(m, lamb=0.5, nu=-0.53, iterations=int(iterations))
    return np.asarray(m.vertices), np.asarray(m.faces, np.int64)


def decimate(vertices, faces, target_faces: int):
    """Quadric decimation (fast-simplification) to about target_faces; unchanged when already at or under."""
    if not target_faces or len(faces) <= target_faces:
        return np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    import fast_simplification

    v, f = fast_simplification.simplify(np.asarray(vertices, np.float32), np.asarray(faces, np.int32),
                                        target_reduction=1.0 - target_faces / len(faces))
    return np.asarray(v, np.float64), np.asarray(f, np.int64)


def unwrap(vertices, faces):
    """(vertices, faces, uvs) from an xatlas atlas: vertices split along the seams."""
    import xatlas

    vmap, f, uv = xatlas.parametrize(np.asarray(vertices, np.float32), np.asarray(faces, np.uint32))
    return np.asarray(vertices)[vmap], np.asarray(f, np.int64), np.asarray(uv, np.float64)


def process(vertices, faces, *, smooth_iterations: int = 0, target_faces: int = 0, uvs: bool = True):
    """The post-process steps in their fixed order (deterministic: same input, same steps):
    smoothing, decimation, UVs. Returns {"vertices", "faces", "uvs" or None, "normals"}."""
    import trimesh

    v, f = smooth(vertices, faces, smooth_iterations)
    v, f = decimate(v, f, target_faces)
    uv = None
    if uvs:
        v, f, uv = unwrap(v, f)
    normals = trimesh.Trimesh(v, f, process=False).vertex_normals  # recomputed after every change
    return {"vertices": v, "faces": f, "uvs": uv, "normals": np.asarray(normals)}


def _trimesh_y_up(mesh: dict):
    import trimesh

    # UVs with a plain clay material: without one trimesh embeds a 2x2 placeholder texture, which
    # core's Preview 3D (three.js) fails to load from its blob URL and logs as an error
    material = trimesh.visual.material.PBRMaterial(baseColorFactor=[102, 102, 102, 255], roughnessFactor=0.9)
    visual = (trimesh.visual.TextureVisuals(uv=mesh["uvs"], material=material) if mesh.get("uvs") is not None
              else None)
    return trimesh.Trimesh(meshdata.z_up_to_y_up(mesh["vertices"]), mesh["faces"],
                           vertex_normals=meshdata.z_up_to_y_up(mesh["normals"]), visual=visual, process=False)


def export(mesh: dict, fmt: str, path, python: str | None = None) -> str:
    """Writes the mesh as GLB or OBJ (trimesh, Y-up as both formats expect) or FBX (Blender)."""
    if fmt not in FORMATS:
        raise SpecError("formats", f"got {fmt!r}", "any of " + ", ".join(FORMATS))
    path = os.fspath(path)
    if fmt in ("glb", "obj"):
        data = _trimesh_y_up(mesh).export(file_type=fmt, include_normals=True) if fmt == "obj" else \
            _trimesh_y_up(mesh).export(file_type="glb")
        with open(path, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path
    return export_fbx(mesh, path, python)


def export_fbx(mesh: dict, path: str, python: str | None = None) -> str:
    """FBX through Blender's own exporter, in a child process of the worker Python (bpy)."""
    with tempfile.TemporaryDirectory(prefix=f"{worker_process.WORK_PREFIX}{os.getpid()}_fbx_") as work:
        src = os.path.join(work, "mesh.npz")
        np.savez(src, vertices=mesh["vertices"], faces=mesh["faces"],
                 uvs=mesh["uvs"] if mesh.get("uvs") is not None else np.zeros((0, 2)))
        proc = subprocess.run([python or worker_process.worker_python(), "-m", "blender_scripts.export_mesh", src, path],
                              cwd=str(worker_process.REPO_ROOT), env=worker_process.child_env(os.path.join(work, "tmp")),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if proc.returncode != 0 or not os.path.isfile(path):
        raise worker_process.RenderError(f"FBX export in Blender failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}")
    return path
