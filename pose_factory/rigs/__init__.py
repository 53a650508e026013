"""Users' rigs: a rigged humanoid (FBX, GLB/glTF, VRM 0.x/1.0 or .blend) as a subject of a pose batch.

A rig subject in a normalized spec (docs/rigs.md):

    {"type": "rig", "rig": {"sha256": "<64 hex>", "format": "fbx" | "glb" | "gltf" | "vrm" | "blend"},
     "bone_map": "auto" | "mixamo" | "rigify" | "vrm" | {custom map}, "height": "auto" | metres,
     "poses": [...]}

Its bytes live in storage under ``projects/<project>/uploads/rigs/<sha256>.<format>``: ``resolve``
(the client side) stores a ``{"file": path}`` given in its place and names it by content;
``prepare_files`` (the worker side) fetches each rig into the work folder, checks it and lets
Blender import it once in a child process with a time limit (blender_scripts/inspect_rig.py), so
a file Blender cannot read, one that takes too long, or one with no armature or no mappable
humanoid fails before the render with a clear error. Imports without bpy or torch.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess

from ..errors import SpecError, echo
from ..validate import check_choice, check_number, check_object, describe, subfield
from .bonemap import BONE_MAPS, map_bones, normalize_bone_map  # noqa: F401
from .files import MAX_RIG_BYTES, RIG_FORMATS, check_bytes, check_size  # noqa: F401

RIG_KEYS = ("type", "rig", "bone_map", "height", "poses", "place")
MIN_HEIGHT, MAX_HEIGHT = 0.3, 3.0
IMPORT_TIMEOUT_S = 120  # Blender's import of one rig (a 30k-triangle FBX takes about 2 s)
RIG_FORMS = 'a rig file {"file": path} (stored on the way) or a stored rig {"sha256": 64 hex digits, "format"}'


def upload_key(project: str, ref: dict) -> str:
    return f"projects/{project}/uploads/rigs/{ref['sha256']}.{ref['format']}"


def normalize_rig_ref(v, field: str) -> dict:
    if not isinstance(v, dict) or "sha256" not in v:
        raise SpecError(field, f"got {describe(v)} (not stored yet: run_job and Request Pose Batch store "
                               "a {\"file\": path} and write this)", RIG_FORMS)
    check_object(v, field, ("sha256", "format"), required=("sha256", "format"))
    sha = v["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise SpecError(f"{field}.sha256", f"got {describe(sha)}", "64 lowercase hex digits")
    return {"sha256": sha, "format": check_choice(v["format"], f"{field}.format", RIG_FORMATS)}


def normalize_rig_subject(raw, field: str) -> dict:
    """A rig subject validated, defaults filled (bone_map "auto", height "auto"). spec.py checks its
    poses and place for every subject type (it passes the rig's own keys); poses given here are
    checked as the mannequin's are; a place is left out of the result."""
    from ..render import poses  # lazy: numpy

    check_object(raw, field, RIG_KEYS, required=("rig",))
    if raw.get("type", "rig") != "rig":
        raise SpecError(subfield(field, "type"), f"got {describe(raw.get('type'))}", "rig")
    height = raw.get("height", "auto")
    if height != "auto":
        height = check_number(height, subfield(field, "height"), MIN_HEIGHT, MAX_HEIGHT, " m, or \"auto\" (the file's own size)")
    out = {"type": "rig", "rig": normalize_rig_ref(raw["rig"], subfield(field, "rig")),
           "bone_map": normalize_bone_map(raw.get("bone_map", "auto"), subfield(field, "bone_map")),
           "height": height}
    if "poses" in raw:
        from ..spec import MAX_POSES

        pose_list, pf = raw["poses"], subfield(field, "poses")
        if not isinstance(pose_list, (list, tuple)) or not 1 <= len(pose_list) <= MAX_POSES:
            raise SpecError(pf, f"got {describe(pose_list)}", f"a list of 1 to {MAX_POSES} poses")
        out["poses"] = [poses.normalize_pose_entry(p, subfield(pf, i)) for i, p in enumerate(pose_list)]
    return out


# --- the client side: a file -> a stored rig ----------------------------------------------------------
def file_format(path) -> str:
    fmt = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if fmt not in RIG_FORMATS:
        raise SpecError("rig", f"a .{fmt or '(no extension)'} file", "one of " + ", ".join("." + f for f in RIG_FORMATS))
    return fmt


def read_file(path, where: str = "rig") -> tuple[bytes, str]:
    """(bytes, format) of a rig file on this machine, checked (size cap, format by name and bytes)."""
    path = os.fspath(path)
    fmt = file_format(path)
    if not os.path.isfile(path):
        raise SpecError(where, f"{echo(path)} does not exist", "an existing rig file")
    check_size(os.path.getsize(path), where)
    with open(path, "rb") as fh:
        data = fh.read()
    check_bytes(data, fmt, where)
    return data, fmt


def resolve(raw_spec: dict, storage, project: str) -> dict:
    """raw_spec with each rig subject's {"file": path} stored under the project's uploads/rigs/ (once:
    the key is the content's hash) and replaced by {"sha256", "format"}; a spec without rig
    subjects comes back as it is. A rig already named by content must be in storage. storage
    None: only hashed (a dry run)."""
    subjects = raw_spec.get("subjects") if isinstance(raw_spec, dict) else None
    if not isinstance(subjects, (list, tuple)) or not any(isinstance(s, dict) and s.get("type") == "rig" for s in subjects):
        return raw_spec
    out = []
    for k, s in enumerate(subjects):
        where = f"subjects[{k}].rig"
        if not (isinstance(s, dict) and s.get("type") == "rig" and "rig" in s):
            out.append(s)
            continue
        ref = s["rig"]
        if isinstance(ref, dict) and "sha256" in ref:
            ref = normalize_rig_ref(ref, where)
            if storage is not None and not storage.exists(upload_key(project, ref)):
                raise SpecError(where, f"rig {ref['sha256'][:12]}….{ref['format']} is not stored in project {project!r}",
                                "a rig file {\"file\": path} (stored on the way)")
        elif isinstance(ref, dict) and set(ref) == {"file"} and isinstance(ref["file"], (str, os.PathLike)):
            data, fmt = read_file(ref["file"], where)
            ref = {"sha256": hashlib.sha256(data).hexdigest(), "format": fmt}
            key = upload_key(project, ref)
            if storage is not None and not storage.exists(key):
                storage.put_bytes(key, data)
        else:
            raise SpecError(where, f"got {describe(ref)}", RIG_FORMS)
        out.append(dict(s, rig=ref))
    return dict(raw_spec, subjects=out)


# --- the worker side: stored rigs -> checked files in the work folder ---------------------------------
def inspect_file(path: str, bone_map="auto", height="auto", timeout: float = IMPORT_TIMEOUT_S,
                 python: str | None = None, name: str | None = None) -> dict:
    """Blender imports the rig file in a child process (at most timeout seconds) and measures it;
    returns its rig report (see report_text). SpecError for a file Blender cannot read, one with no
    armature or no mappable humanoid, or an import that takes too long."""
    from ..worker_process import REPO_ROOT, child_env, work_folder, worker_python

    fmt = file_format(path)
    check_size(os.path.getsize(path), "rig")
    with work_folder() as work:  # the child's report and scratch: never beside the user's file
        out = os.path.join(work, "inspect.json")
        cmd = [python or worker_python(), "-m", "blender_scripts.inspect_rig", "--file", os.path.abspath(path),
               "--format", fmt, "--bone-map", json.dumps(bone_map), "--height", json.dumps(height),
               "--name", name or os.path.basename(path), "--out", out]
        try:
            proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=child_env(os.path.join(work, "tmp")),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpecError("rig", f"Blender's import took more than {timeout:g} s", "a rig Blender imports in time "
                            "(fewer triangles, smaller textures)") from None
        if proc.returncode != 0 or not os.path.isfile(out):
            raise SpecError("rig", "Blender could not import it (" + _last_line(proc.stdout + proc.stderr) + ")",
                            "a rigged humanoid " + ", ".join("." + f for f in RIG_FORMATS) + " file Blender reads")
        with open(out) as fh:
            result = json.load(fh)
    if "error" in result:
        raise SpecError(result.get("field", "rig"), result["error"], result.get("allowed", ""))
    return result["report"]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln:
            return ln[-300:]
    return (lines[-1][-300:] if lines else "no output")


def prepare_files(spec: dict, storage, project: str, folder: str, python: str | None = None) -> list:
    """Per subject of the normalized spec: the path of its rig file fetched into folder and imported
    once by Blender with a time limit (inspect_file), or None for a mannequin."""
    os.makedirs(folder, exist_ok=True)
    paths, checked = [], {}
    for k, s in enumerate(spec["subjects"]):
        if s.get("type") != "rig":
            paths.append(None)
            continue
        where = f"subjects[{k}].rig"
        ref = s["rig"]
        same = (ref["sha256"], json.dumps(s["bone_map"], sort_keys=True), s["height"])
        if same in checked:  # the same rig twice in a scene: fetched and checked once
            paths.append(checked[same])
            continue
        key = upload_key(project, ref)
        if not storage.exists(key):
            raise SpecError(where, f"{key} is not in storage", "a rig stored by run_job / Request Pose Batch")
        data = storage.get_bytes(key)
        if hashlib.sha256(data).hexdigest() != ref["sha256"]:
            raise SpecError(where, "the stored rig does not match its sha256", "the file the spec names")
        check_bytes(data, ref["format"], where)
        path = os.path.join(folder, f"rig{k:02d}.{ref['format']}")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            inspect_file(path, s["bone_map"], s["height"], python=python)
        except SpecError as e:
            raise SpecError(where if e.field == "rig" else f"subjects[{k}].{e.field}", e.message, e.allowed) from None
        paths.append(path)
        checked[same] = path
    return paths


# --- the rig report ------------------------------------------------------------------------------------
def report_text(report: dict) -> str:
    """The rig report as text (the Custom Rig node's STRING output)."""
    j = report["joints"]
    hands = report["hands"]
    bm = report["bone_map"] if isinstance(report["bone_map"], str) else "custom"
    lines = [f"{report['file']} ({report['format'].upper()}): bone map {bm}, rest pose {report['rest']}, "
             f"height {report['height']:.3f} m, {report['triangles']} triangles",
             f"found ({len(j['found'])}): " + (", ".join(j["found"]) or "none"),
             "estimated from the head: " + (", ".join(j["estimated"]) or "none"),
             f"missing ({len(j['missing'])}): " + (", ".join(j["missing"]) or "none"),
             "hands: " + ", ".join(f"{side} {'yes' if hands[side] else 'no (empty hand keypoints)'}" for side in ("left", "right"))]
    if report.get("unmapped_bones"):
        ub = report["unmapped_bones"]
        lines.append(f"bones no map names ({len(ub)}; they follow their parents): " + ", ".join(ub[:40]) +
                     (", ..." if len(ub) > 40 else ""))
    return "\n".join(lines)
