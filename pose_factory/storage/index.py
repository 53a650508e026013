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

from ..manifest import validate_manifest
from ..spec import validate_project_name
from . import list_batches, read_manifest

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
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "projects": projects}, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:  # a full disk: the old index stays, no .index.*.tmp is left beside it
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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


def add_project(cache_root, name: str) -> None:
    """Lists a project (created here, still without batches) in the index."""
    validate_project_name(name)
    with _lock:
        projects_now = load(cache_root)
        if name not in projects_now:
            projects_now[name] = {}
            _save(cache_root, projects_now)


def rename_project(cache_root, old: str, new: str) -> None:
    """Moves a renamed project's entries (batch ids do not change)."""
    validate_project_name(old)
    validate_project_name(new)
    with _lock:
        projects_now = load(cache_root)
        moved = projects_now.pop(old, {})
        projects_now[new] = {**moved, **projects_now.get(new, {})}
        _save(cache_root, projects_now)


def projects(cache_root) -> list[str]:
    return sorted(load(cache_root))


def batches(cache_root, project: str) -> list[str]:
    """The project's batch ids, newest first."""
    found = load(cache_root).get(project, {})
    return sorted(found, key=lambda b: (found[b].get("created_at") or "", b), reverse=True)


SEP = "/"  # a dropdown entry: "<project>/<batch_id>" (a project name never holds a "/")


def choices(cache_root, where=None) -> list[str]:
    """Every batch as "project/batch_id", newest first: the loaders' dropdown, whose entries carry
    their project, so the selection is consistent by construction. where(summary) -> bool keeps
    only the batches a loader can load (e.g. those with a keypoints pass)."""
    rows = [(s.get("created_at") or "", p, b) for p, found in load(cache_root).items() for b, s in found.items()
            if where is None or where(s)]
    return [f"{p}{SEP}{b}" for _, p, b in sorted(rows, reverse=True)]


def split_choice(value: str) -> tuple[str | None, str]:
    """"project/batch_id" -> (project, batch_id); a bare batch id (older workflows) -> (None, id)."""
    project, sep, batch_id = str(value).rpartition(SEP)
    return (project, batch_id) if sep else (None, batch_id)


def projects_holding(cache_root, batch_id: str) -> list[str]:
    """The projects whose index lists this batch id."""
    return sorted(p for p, found in load(cache_root).items() if batch_id in found)


def refresh(cache_root, storage, project_names=None) -> dict:
    """Re-lists storage for the given projects (default: those under projects/) and replaces their
    entries in the index; returns the index. Only projects that exist in storage (at least one
    complete batch) are kept: a name storage does not know is never added, and a project whose
    batches are all gone leaves the index. A manifest that fails validation is left out."""
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
        before = json.dumps(projects_now, sort_keys=True)
        for name, found in fresh.items():
            if found:
                projects_now[name] = found
            else:
                projects_now.pop(name, None)
        if json.dumps(projects_now, sort_keys=True) != before or not _path(cache_root).exists():
            _save(cache_root, projects_now)
        return projects_now
