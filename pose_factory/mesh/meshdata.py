"""A triangle mesh as plain arrays, in our world frame (Z up, metres, like Blender): reading it
from a file, from ComfyUI core's ``MESH`` type, and as the .npz the renderer reads. Numpy only at
import; trimesh is imported to read GLB/OBJ files.

glTF is Y-up (and so are OBJ files by convention, ComfyUI's ``MESH`` — whose GLB saver writes its
vertices unchanged — and the three.js viewer of Load 3D / Preview 3D): they are turned to Z-up on the
way in (x, y, z) → (x, -z, y) and back on the way out, as Blender's own glTF importer does."""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from ..errors import SpecError
from ..spec import MESH_FILE_FORMATS

MAX_FACES = 5_000_000
MAX_VERTICES = 5_000_000
FILE_FORMATS = MESH_FILE_FORMATS  # single-file formats load_file reads (a .gltf or FBX: export it as GLB)
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # rows: new x, y, z from old


def y_up_to_z_up(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float64) @ Y_UP_TO_Z_UP.T


def z_up_to_y_up(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float64) @ Y_UP_TO_Z_UP


def check(vertices, faces, where: str = "mesh") -> tuple[np.ndarray, np.ndarray]:
    """(float64 (N, 3), int64 (M, 3)) or SpecError naming what is wrong."""
    v = np.asarray(vertices)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or not len(v):
        raise SpecError(where, f"vertices of shape {v.shape}", "a non-empty (N, 3) array")
    if f.ndim != 2 or f.shape[1] != 3 or not len(f):
        raise SpecError(where, f"faces of shape {f.shape}", "a non-empty (M, 3) array of triangles")
    if len(v) > MAX_VERTICES or len(f) > MAX_FACES:
        raise SpecError(where, f"{len(v)} vertices, {len(f)} faces",
                        f"at most {MAX_VERTICES} vertices and {MAX_FACES} faces (decimate it first)")
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise SpecError(where, "non-finite vertex coordinates", "finite numbers")
    if not np.issubdtype(f.dtype, np.integer):
        raise SpecError(where, f"faces of type {f.dtype}", "integer vertex indices")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise SpecError(where, f"face indices from {f.min()} to {f.max()}", f"indices from 0 to {len(v) - 1}")
    return v, f


def from_comfy_mesh(mesh, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Item ``index`` of ComfyUI core's ``MESH`` (comfy_api.latest Types.MESH: vertices (B, N, 3),
    faces (B, M, 3) torch tensors, zero-padded to common sizes when vertex_counts/face_counts are
    set), Z-up."""
    for name in ("vertices", "faces"):
        if not hasattr(mesh, name):
            raise SpecError("mesh", f"got {type(mesh).__name__}", "ComfyUI's MESH (vertices, faces)")
    v = np.asarray(mesh.vertices.detach().cpu().numpy() if hasattr(mesh.vertices, "detach") else mesh.vertices)
    f = np.asarray(mesh.faces.detach().cpu().numpy() if hasattr(mesh.faces, "detach") else mesh.faces)
    if v.ndim == 2:
        v, f = v[None], f[None]
    if not 0 <= index < len(v):
        raise SpecError("mesh_index", f"got {index}", f"0 to {len(v) - 1} (the MESH holds {len(v)})")
    v, f = v[index], f[index]
    counts = (getattr(mesh, "vertex_counts", None), getattr(mesh, "face_counts", None))
    if counts[0] is not None and counts[1] is not None:
        v = v[: int(counts[0][index])]
        f = f[: int(counts[1][index])]
    v, f = check(v, f)
    return y_up_to_z_up(v), f


def load_file(path) -> tuple[np.ndarray, np.ndarray]:
    """A mesh file's triangles (every mesh of a scene, with its node transforms), Z-up."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FILE_FORMATS:
        raise SpecError("mesh_file", f"a .{ext or '(no extension)'} file",
                        "one of " + ", ".join("." + e for e in FILE_FORMATS) + " (an FBX: export it as GLB)")
    if not os.path.isfile(path):
        raise SpecError("mesh_file", f"{path!r} does not exist", "a mesh file")
    import trimesh  # worker environment (pod_worker/requirements.txt)

    try:
        m = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # trimesh raises many kinds for a broken file
        raise SpecError("mesh_file", f"{os.path.basename(path)} could not be read ({type(e).__name__}: {e})",
                        "a valid " + ext.upper() + " file") from None
    v, f = check(m.vertices, m.faces, "mesh_file")
    return (v if ext in ("stl", "ply") else y_up_to_z_up(v)), f


def npz_bytes(vertices, faces) -> bytes:
    """The mesh as the renderer reads it (and as a mesh-pass batch stores it): deterministic bytes."""
    buf = io.BytesIO()
    np.savez(buf, vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces, np.int64))
    return buf.getvalue()


def read_npz(path_or_bytes) -> tuple[np.ndarray, np.ndarray]:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
    with np.load(src, allow_pickle=False) as z:
        return check(z["vertices"], z["faces"])


def digest(vertices, faces) -> str:
    """sha256 of the mesh's geometry (vertices rounded to 0.1 µm), the mesh's part of a batch id."""
    h = hashlib.sha256()
    h.update(np.round(np.asarray(vertices, np.float64), 7).astype("<f8").tobytes())
    h.update(np.asarray(faces, "<i8").tobytes())
    return h.hexdigest()


def fit_points(vertices, n: int = 20000) -> np.ndarray:
    """At most n of the vertices (every k-th, deterministic) for fitting a camera rig."""
    v = np.asarray(vertices)
    return v[:: max(1, len(v) // n)]
