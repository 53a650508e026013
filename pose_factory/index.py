"""The local index of projects and their batches: what dropdowns and routes show without touching
the network (DESIGN.md §5: INPUT_TYPES must not call storage).

    <cache_root>/index.json   {"version": 1, "projects": {"demo": {"3f2a…": {"created_at", "views",
                                "frames", "width", "height", "passes"}}}}

It is filled when this machine makes or loads a batch (``record``, from a validated manifest) and
by ``refresh``, which lists the configured storage. Written atomically; a damaged index is rebuilt
empty, never fatal, and what ``load`` returns holds only valid project names and batch ids, so a
hand-edited or poisoned file cannot put a path or a bad name in front of a route.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path

from .manifest import validate_manifest
from .spec import validate_project_name
from .storage import list_batches, read_manifest

INDEX_NAME = "index.json"
_BATCH_RE = re.compile(r"[0-9a-f]{16}")
_lock = threading.Lock()  # one ComfyUI process, several threads (executor, server routes)


def _path(cache_root) -> Path:
    return Path(cache_root) / INDEX_NAME


def _valid_project(name) -> bool:
    try:
        validate_project_name(name)
    except ValueError:
        return False
    return True


def load(cache_root) -> dict:
    """{project: {batch_id: summary}}; empty when there is no index or it cannot be read. Entries
    under an invalid project name or batch id, or whose summary is not an object, are left out."""
    try:
        projects = json.loads(_path(cache_root).read_text(encoding="utf-8"))["projects"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    if not isinstance(projects, dict):
        return {}
    return {name: {bid: summ for bid, summ in batches.items() if _BATCH_RE.fullmatch(bid) and isinstance(summ, dict)}
            for name, batches in projects.items() if _valid_project(name) and isinstance(batches, dict)}


def _save(cache_root, projects: dict) -> None:
    path = _path(cache_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".index.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"version": 1, "projects": projects}, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def summary(manifest: dict) -> dict:
    return {"created_at": manifest.get("created_at"), "views": len(manifest["views"]),
            "frames": manifest["frames"], "width": manifest["width"], "height": manifest["height"],
            "passes": sorted({name for e in manifest["entries"] for name in e["files"]})}


def record(cache_root, manifest: dict) -> None:
    """Adds (or updates) one batch from its manifest; ManifestError when it is not a valid one."""
    validate_manifest(manifest)
    with _lock:
        projects = load(cache_root)
        projects.setdefault(manifest["project"], {})[manifest["batch_id"]] = summary(manifest)
        _save(cache_root, projects)


def projects(cache_root) -> list[str]:
    return sorted(load(cache_root))


def batches(cache_root, project: str) -> list[str]:
    """The project's batch ids, newest first."""
    found = load(cache_root).get(project, {})
    return sorted(found, key=lambda b: (found[b].get("created_at") or "", b), reverse=True)


def refresh(cache_root, storage, project_names=None) -> dict:
    """Re-lists storage for the given projects (default: those under projects/) and replaces their
    entries in the index; returns the index. A manifest that fails validation is left out."""
    if project_names is None:
        project_names = sorted({k.split("/")[1] for k in storage.list("projects/") if k.count("/") >= 2})
    fresh = {}
    for name in project_names:
        try:
            validate_project_name(name)
        except ValueError:
            continue
        known = load(cache_root).get(name, {})
        fresh[name] = {}
        for bid in list_batches(storage, name):
            if bid in known:
                fresh[name][bid] = known[bid]
                continue
            try:
                m = read_manifest(storage, name, bid)
            except ValueError:
                continue
            if m is not None:
                fresh[name][bid] = summary(m)
    with _lock:
        projects_now = load(cache_root)
        projects_now.update(fresh)
        _save(cache_root, projects_now)
        return projects_now
