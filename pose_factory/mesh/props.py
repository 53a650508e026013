"""Props: meshes placed in a pose scene beside the mannequin (a JobSpec's optional ``props``).

A prop in a normalized spec names its mesh by content, so the batch id changes with the mesh
(the spec's form and its validation, normalize_props, live with the JobSpec in spec.py):

    {"mesh": {"sha256": "<64 hex>", "format": "glb" | "obj" | "stl" | "ply" | "npz"},
     "location": [x, y, z] (m), "rotation": [x, y, z] (degrees, XYZ Euler as Blender's default),
     "scale": [sx, sy, sz], "shading": "smooth" | "flat"}

Its bytes live in storage under ``projects/<project>/uploads/meshes/<sha256>.<format>``. ``resolve``
(the client side: run_job, Request Pose Batch) turns the references a user gives — a mesh file on
this machine, a stored reconstruct batch ``{"project", "batch_id"}``, or ``(vertices, faces)``
arrays such as ComfyUI core's MESH — into that form and uploads the bytes; ``prepare_files`` (the
worker side, before Blender starts) downloads them, reads them with the mesh room's reader
(meshdata), checks their size and writes each prop in world coordinates as the .npz the Blender
child reads. Numpy only at import (trimesh where a file is read, in the worker environment).
"""
from __future__ import annotations

import hashlib
import math
import os
import re

import numpy as np

from ..errors import SpecError, echo
from ..spec import (MAX_PROPS, PROP_FORMATS as FORMATS, PROP_KEYS as KEYS, normalize_mesh_ref,  # noqa: F401
                    normalize_placement, normalize_props, validate_project_name)
from ..validate import check_object
from . import meshdata

MAX_PROP_FACES = 1_000_000  # one prop's triangles
MAX_TOTAL_FACES = 2_000_000  # every prop of a spec together
MAX_PROP_BYTES = 64 << 20  # one prop's file
PROP_LABEL_BASE = 32  # prop i's id in the parts/ pass (and the Blender object index) is 32 + i
MESH_FORMS = ("a mesh file path, {\"file\": path}, a reconstruct batch {\"project\", \"batch_id\"}, "
              "{\"vertices\", \"faces\"} arrays, or a stored mesh {\"sha256\", \"format\"}")


def label(i: int) -> int:
    return PROP_LABEL_BASE + i


def labels(n: int = MAX_PROPS) -> list[int]:
    return [label(i) for i in range(n)]


def upload_key(project: str, ref: dict) -> str:
    return f"projects/{project}/uploads/meshes/{ref['sha256']}.{ref['format']}"


# --- the client side: references → stored meshes ---------------------------------------------------
def check_bytes(data: bytes, fmt: str, where: str) -> None:
    """A cheap check of a mesh file's bytes, before anything is uploaded: its size and that it is
    the format its name says (the worker reads it whole)."""
    if len(data) > MAX_PROP_BYTES:
        raise SpecError(where, f"{len(data)} bytes", f"a mesh file of at most {MAX_PROP_BYTES} bytes")
    head = data[:512]
    ok = {"glb": head[:4] == b"glTF", "npz": head[:2] == b"PK", "ply": head[:3] == b"ply",
          "stl": head[:5].lower() == b"solid" or (len(data) >= 84 and
                                                   len(data) == 84 + 50 * int.from_bytes(data[80:84], "little")),
          "obj": b"\0" not in data[:65536] and re.search(rb"(^|\n)\s*v\s", data[:1 << 20]) is not None}[fmt]
    if not ok:
        raise SpecError(where, f"not a {fmt.upper()} file (its first bytes are {echo(head[:8])})",
                        f"a {fmt.upper()} mesh file")


def _file_bytes(path, where: str) -> tuple[bytes, str]:
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise SpecError(where, f"a .{fmt or '(no extension)'} file", "one of " + ", ".join("." + f for f in FORMATS))
    if not os.path.isfile(path):
        raise SpecError(where, f"{echo(path)} does not exist", "an existing mesh file")
    if os.path.getsize(path) > MAX_PROP_BYTES:
        raise SpecError(where, f"{os.path.getsize(path)} bytes", f"a mesh file of at most {MAX_PROP_BYTES} bytes")
    with open(path, "rb") as fh:
        return fh.read(), fmt


def _batch_mesh(ref: dict, storage, where: str) -> tuple[bytes, str]:
    """The GLB of a stored reconstruct batch (Request Mesh From Images' mesh output)."""
    from .. import storage as storage_mod
    from ..manifest import asset_key

    check_object(ref, where, ("project", "batch_id", "file", "format"), required=("project", "batch_id"))
    if storage is None:
        raise SpecError(where, "a stored batch, but no storage to read it from", "a mesh file")
    project = validate_project_name(ref["project"])
    manifest = storage_mod.read_manifest(storage, project, str(ref["batch_id"]))
    key = asset_key(manifest, "glb") if manifest else None
    if key is None:
        raise SpecError(where, f"batch {echo(project)}/{echo(ref['batch_id'])} has no stored GLB mesh",
                        "a completed reconstruct batch (Request Mesh From Images)")
    return storage.get_bytes(storage_mod.batch_prefix(project, manifest["batch_id"]) + key), "glb"


def mesh_bytes(mesh, where: str, storage=None) -> tuple[bytes, str]:
    """(bytes, format) of one of MESH_FORMS but the stored one."""
    if isinstance(mesh, (str, os.PathLike)):
        data, fmt = _file_bytes(mesh, where)
    elif isinstance(mesh, dict) and "file" in mesh and "batch_id" not in mesh:
        if set(mesh) != {"file"}:
            raise SpecError(where, "keys " + ", ".join(sorted(map(str, mesh))), "only \"file\"")
        data, fmt = _file_bytes(mesh["file"], where)
    elif isinstance(mesh, dict) and "batch_id" in mesh:
        data, fmt = _batch_mesh(mesh, storage, where)
    elif isinstance(mesh, dict) and {"vertices", "faces"} <= set(mesh):
        v, f = meshdata.check(mesh["vertices"], mesh["faces"], where)
        check_faces(len(f), where)
        return meshdata.npz_bytes(v, f), "npz"
    else:
        raise SpecError(where, f"got {echo(mesh)}", MESH_FORMS)
    check_bytes(data, fmt, where)
    return data, fmt


def check_faces(n: int, where: str) -> None:
    if n > MAX_PROP_FACES:
        raise SpecError(where, f"{n} faces", f"at most {MAX_PROP_FACES} faces a prop (decimate it first)")


def resolve(raw_spec: dict, storage, project: str) -> dict:
    """raw_spec with each prop's mesh stored under the project's uploads/meshes/ (once: the key is
    the content's hash) and named by content; a spec without props comes back as it is. A mesh
    already named by content must be in storage. storage None: only hashed (a dry run)."""
    if not isinstance(raw_spec, dict) or not raw_spec.get("props"):
        return raw_spec
    raw = raw_spec["props"]
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_PROPS:
        return raw_spec  # normalize_props says what is wrong
    out = []
    for i, p in enumerate(raw):
        where = f"props[{i}].mesh"
        if not isinstance(p, dict) or "mesh" not in p:
            out.append(p)
            continue
        mesh = p["mesh"]
        if isinstance(mesh, dict) and "sha256" in mesh:
            ref = normalize_mesh_ref(mesh, where)
            if storage is not None and not storage.exists(upload_key(project, ref)):
                raise SpecError(where, f"mesh {ref['sha256'][:12]}….{ref['format']} is not stored in project "
                                       f"{project!r}", "a mesh file, batch or arrays (stored on the way)")
        else:
            data, fmt = mesh_bytes(mesh, where, storage)
            ref = {"sha256": hashlib.sha256(data).hexdigest(), "format": fmt}
            key = upload_key(project, ref)
            if storage is not None and not storage.exists(key):
                storage.put_bytes(key, data)
        out.append(dict(p, mesh=ref))
    return dict(raw_spec, props=out)


# --- the worker side: stored meshes → world-space .npz for Blender ---------------------------------
def euler_xyz(degrees) -> np.ndarray:
    """Blender's XYZ Euler rotation (X first, then Y, then Z, about the world axes)."""
    x, y, z = (math.radians(a) for a in degrees)
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


def place(vertices, prop: dict) -> np.ndarray:
    """The prop's vertices (Z-up, its own frame) in the world: scaled, rotated, then moved."""
    v = np.asarray(vertices, np.float64) * np.asarray(prop["scale"])
    return v @ euler_xyz(prop["rotation"]).T + np.asarray(prop["location"])


def read_mesh(data: bytes, ref: dict, folder: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A stored prop's (vertices Z-up, faces), read by the mesh room's reader (meshdata)."""
    if hashlib.sha256(data).hexdigest() != ref["sha256"]:
        raise SpecError(where, "the stored mesh does not match its sha256", "the file the spec names")
    check_bytes(data, ref["format"], where)
    if ref["format"] == "npz":
        try:
            return meshdata.read_npz(data)
        except SpecError as e:
            raise SpecError(where, e.message, e.allowed) from None
        except Exception as e:  # a broken archive
            raise SpecError(where, f"the .npz could not be read ({type(e).__name__})",
                            "vertices and faces arrays") from None
    path = os.path.join(folder, f"{ref['sha256'][:16]}.{ref['format']}")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        return meshdata.load_file(path)
    except SpecError as e:
        raise SpecError(where, e.message, e.allowed) from None
    finally:
        os.remove(path)


def prepare_files(spec: dict, storage, project: str, folder: str) -> list[str]:
    """Each prop of the normalized spec as world-space .npz files in folder (pNN.npz), in order;
    SpecError when one is missing from storage, unreadable, or too large."""
    paths, total = [], 0
    os.makedirs(folder, exist_ok=True)
    for i, prop in enumerate(spec.get("props") or []):
        where = f"props[{i}].mesh"
        key = upload_key(project, prop["mesh"])
        if not storage.exists(key):
            raise SpecError(where, f"{key} is not in storage", "a mesh stored by run_job / Request Pose Batch")
        v, f = read_mesh(storage.get_bytes(key), prop["mesh"], folder, where)
        check_faces(len(f), where)
        total += len(f)
        if total > MAX_TOTAL_FACES:
            raise SpecError("props", f"{total} faces in all", f"at most {MAX_TOTAL_FACES} faces for every prop together")
        path = os.path.join(folder, f"p{i:02d}.npz")
        with open(path, "wb") as fh:
            fh.write(meshdata.npz_bytes(place(v, prop), f))
        paths.append(path)
    return paths
