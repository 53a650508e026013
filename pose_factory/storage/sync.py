"""The local data folders and what the sync CLI does with them (DESIGN.md §7).

    <mirror>/<project>/<batch_id>/...          read-only mirror of storage (settings storage.cache_root,
                                               data/raw); written only by pulls and the loaders' downloads
    <working>/current_batch/                   the active batch: hard links into the mirror (copies where
                                               the file system has none) and batch.json, its index file
    <archive>/<project>/<batch_id>/            batches moved out of the mirror and the working set

Every folder comes from settings.data_dirs; every project name and batch id is validated before a
path is made of it, so nothing is written outside those folders. A pull goes through the loaders'
downloader (parallel, resumable, verified against the manifest's sha256) and local index.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from . import index as index_mod
from . import projects as projects_mod
from .download import cached_batch, download_batch, safe_path
from ..errors import SpecError, StorageError
from ..manifest import validate_manifest
from ..settings import data_dirs
from ..spec import batch_id as spec_batch_id
from ..spec import load_spec_file, normalize_spec, validate_project_name
from . import MANIFEST_NAME, BatchWriter, batch_prefix, read_manifest, sha256_file

BATCH_FILE = "batch.json"  # the index file of the current batch
_BATCH_RE = re.compile(r"[0-9a-f]{16}")
BATCH_RULE = "a batch id (16 lowercase hexadecimal characters), or <project>/<batch id>"


class NothingFound(LookupError):
    """The batch or project asked for is not there (the CLI's exit code 3)."""


def parse_batch(text, project: str) -> tuple[str, str]:
    """(project, batch_id) from '<batch_id>' (in ``project``) or '<project>/<batch_id>'."""
    if not isinstance(text, str):
        raise SpecError("batch", f"got {text!r}", BATCH_RULE)
    if text.count("/") == 1:
        project, text = text.split("/")
    validate_project_name(project)
    if not _BATCH_RE.fullmatch(text):
        raise SpecError("batch", f"got {text!r}", BATCH_RULE)
    return project, text


PLACES = ("storage", "mirror", "archive")


def projects_holding(settings: dict, get_storage, batch_id: str, places=PLACES) -> dict:
    """{project: [places]} of every project that holds the batch id: a complete batch in storage
    (its manifest; one listing of projects/), a folder with its manifest in the mirror, a folder in
    the archive. get_storage() is called only when storage is among the places."""
    dirs = data_dirs(settings)
    found: dict = {}
    for place in places:
        if place == "storage":
            tail = f"/batches/{batch_id}/{MANIFEST_NAME}"
            names = {k[len("projects/"):-len(tail)] for k in get_storage().list("projects/") if k.endswith(tail)}
        else:
            try:
                names = {d.name for d in Path(dirs[place]).iterdir() if (d / batch_id).is_dir()
                         and (place == "archive" or _local_manifest(d / batch_id) is not None)}
            except OSError:
                names = set()
        for name in sorted(names):
            try:
                validate_project_name(name)
            except ValueError:
                continue
            found.setdefault(name, []).append(place)
    return dict(sorted(found.items()))


def find_batch(settings: dict, get_storage, batch_id, places=PLACES) -> tuple[str, str]:
    """(project, batch_id) for a bare batch id, whichever project holds it (issue 21.5): NothingFound
    when none does (saying where it looked), a SpecError listing them when several do."""
    if not isinstance(batch_id, str) or not _BATCH_RE.fullmatch(batch_id):
        raise SpecError("batch", f"got {batch_id!r}", BATCH_RULE)
    found = projects_holding(settings, get_storage, batch_id, places)
    if len(found) == 1:
        return next(iter(found)), batch_id
    if not found:
        dirs = data_dirs(settings)
        looked = ", ".join("storage" if p == "storage" else f"the {p} {dirs[p]}" for p in places)
        elsewhere = projects_holding(settings, None, batch_id, [p for p in ("mirror", "archive") if p not in places])
        hint = "".join(f"; {p}/{batch_id} is " + " and ".join("already archived" if w == "archive" else f"in the {w}"
                                                            for w in where) for p, where in elsewhere.items())
        raise NothingFound(f"batch {batch_id} not found in any project (looked in {looked}){hint}")
    listed = ", ".join(f"{p}/{batch_id} ({', '.join(w)})" for p, w in found.items())
    raise SpecError("batch", f"{batch_id} is in {len(found)} projects: {listed}",
                    "name one: --project NAME, or PROJECT/BATCH_ID")


def _batch_dir(root: Path, project: str, batch_id: str) -> Path:
    batch_prefix(project, batch_id)  # validates both
    return Path(root) / project / batch_id


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local_manifest(folder: Path) -> dict | None:
    try:
        m = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        return m if isinstance(m, dict) and m.get("batch_id") == folder.name else None
    except (OSError, ValueError):
        return None


# --- pull -----------------------------------------------------------------------------------------
def pull(settings: dict, storage, project: str, batch_id: str, progress=None) -> dict:
    """The batch into <mirror>/<project>/<batch_id>/: only files missing or not matching the
    manifest's sha256 are fetched (a part left by a broken transfer is resumed). NothingFound when
    storage has no manifest for it."""
    validate_project_name(project)
    manifest = read_manifest(storage, project, batch_id)
    if manifest is None:
        raise NothingFound(f"batch {project}/{batch_id} not found in storage (no manifest: unknown, or "
                           "not complete yet)")
    mirror = data_dirs(settings)["mirror"]
    counts = {"fetched": 0, "fetched_bytes": 0, "kept": 0}

    def on_file(key, size, fetched):
        counts["fetched" if fetched else "kept"] += 1
        counts["fetched_bytes"] += size if fetched else 0

    manifest, folder = download_batch(storage, project, batch_id, mirror, manifest=manifest, progress=progress,
                                      workers=settings["sync"]["parallel_transfers"], on_file=on_file)
    index_mod.record(mirror, manifest)
    return {"project": project, "batch_id": batch_id, "folder": str(folder),
            "files": counts["fetched"] + counts["kept"], **counts}


def latest_batch(settings: dict, storage, project: str) -> str:
    """The newest complete batch of the project in storage (by its manifest's created_at)."""
    mirror = data_dirs(settings)["mirror"]
    index_mod.refresh(mirror, storage, [validate_project_name(project)])
    found = index_mod.batches(mirror, project)
    if not found:
        raise NothingFound(f"project {project!r} has no complete batch in storage")
    return found[0]


# --- list -----------------------------------------------------------------------------------------
def _local_batches(root: Path, project: str) -> dict:
    """{batch_id: folder} of the batch folders under root/<project>/."""
    out = {}
    try:
        for d in (Path(root) / project).iterdir():
            if d.is_dir() and _BATCH_RE.fullmatch(d.name):
                out[d.name] = d
    except OSError:
        pass
    return out


def batch_rows(settings: dict, storage, project: str) -> list[dict]:
    """The project's batches, newest first, wherever they are: {batch_id, created_at, views, frames,
    passes, files, bytes, state (complete | incomplete: no manifest), where: [storage, mirror,
    working, archive]}."""
    validate_project_name(project)
    dirs = data_dirs(settings)
    known = index_mod.refresh(dirs["mirror"], storage, [project]).get(project, {})
    p = f"projects/{project}/batches/"
    stored: dict = {}
    for key, meta in storage.list_info(p).items():
        bid, _, rest = key[len(p):].partition("/")
        if _BATCH_RE.fullmatch(bid) and rest:
            row = stored.setdefault(bid, {"files": 0, "bytes": 0, "complete": False})
            row["files"] += 1
            row["bytes"] += meta["size"]
            row["complete"] |= rest == MANIFEST_NAME
    mirror, archive = _local_batches(dirs["mirror"], project), _local_batches(dirs["archive"], project)
    current = current_batch(settings)
    rows = []
    for bid in sorted(set(stored) | set(mirror) | set(archive)):
        local = mirror.get(bid) or archive.get(bid)
        summary = known.get(bid)
        if summary is None and local is not None:
            m = _local_manifest(local)
            summary = index_mod.summary(m) if m else None
        where = [w for w, there in (("storage", bid in stored), ("mirror", bid in mirror),
                                    ("working", bool(current) and current["project"] == project
                                     and current["batch_id"] == bid),
                                    ("archive", bid in archive)) if there]
        s = stored.get(bid)
        complete = s["complete"] if s else summary is not None
        rows.append({"project": project, "batch_id": bid, "created_at": (summary or {}).get("created_at"),
                     "views": (summary or {}).get("views"), "frames": (summary or {}).get("frames"),
                     "passes": (summary or {}).get("passes", []), "files": s["files"] if s else None,
                     "bytes": s["bytes"] if s else _folder_bytes(local),
                     "state": "complete" if complete else "incomplete", "where": where})
    return sorted(rows, key=lambda r: (r["created_at"] or "", r["batch_id"]), reverse=True)


def _folder_bytes(folder) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) if folder else 0


def project_rows(settings: dict, storage) -> list[dict]:
    """Every project in storage, the mirror or the archive: storage's info() plus where it is."""
    dirs = data_dirs(settings)
    rows = {r["name"]: dict(r, where=["storage"]) for r in projects_mod.list_projects(storage)}
    for place in ("mirror", "archive"):
        try:
            names = [d.name for d in Path(dirs[place]).iterdir() if d.is_dir()]
        except OSError:
            names = []
        for name in names:
            try:
                validate_project_name(name)
            except ValueError:
                continue
            if not _local_batches(dirs[place], name):
                continue
            rows.setdefault(name, {"name": name, "display_name": name, "created_at": None, "batches": None,
                                   "objects": 0, "bytes": 0, "renaming_to": None, "where": []})["where"].append(place)
    return [rows[k] for k in sorted(rows)]


# --- the working set ------------------------------------------------------------------------------
def current_batch(settings: dict) -> dict | None:
    """The index file of <working>/current_batch/ ({project, batch_id, ...}), or None."""
    path = data_dirs(settings)["current_batch"] / BATCH_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        batch_prefix(info["project"], info["batch_id"])
        return info
    except (OSError, ValueError, KeyError, TypeError, StorageError):
        return None


def _link_or_copy(src: Path, dst: Path) -> bool:
    """A hard link where the file system allows (True), else a copy."""
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copy2(src, dst)
        return False


def prepare_batch(settings: dict, get_storage, project: str, batch_id: str, progress=None) -> dict:
    """The batch into <working>/current_batch/ (replacing what was there), pulled first when the
    mirror lacks it; batch.json lists it. get_storage() is called only when a pull is needed."""
    dirs = data_dirs(settings)
    pulled = None
    hit = cached_batch(dirs["mirror"], project, batch_id)
    if hit is None:
        pulled = pull(settings, get_storage(), project, batch_id, progress=progress)
        hit = cached_batch(dirs["mirror"], project, batch_id)
        if hit is None:
            raise StorageError(f"batch {project}/{batch_id}: pulled, but the mirror copy is not whole")
    manifest, folder = hit
    keys = [info["key"] for e in manifest["entries"] for info in e["files"].values()] + [MANIFEST_NAME]
    working = dirs["working"]
    working.mkdir(parents=True, exist_ok=True)
    tmp = working / f".current_batch.tmp-{uuid.uuid4().hex[:8]}"
    linked = 0
    try:
        for key in keys:
            dst = safe_path(tmp, key) if key != MANIFEST_NAME else tmp / MANIFEST_NAME
            dst.parent.mkdir(parents=True, exist_ok=True)
            linked += _link_or_copy(safe_path(folder, key) if key != MANIFEST_NAME else folder / MANIFEST_NAME, dst)
        info = {"version": 1, "project": project, "batch_id": batch_id, "created_at": manifest.get("created_at"),
                "prepared_at": _now(), **{k: index_mod.summary(manifest)[k] for k in ("views", "frames", "passes")},
                "files": keys, "link": "hardlink" if linked == len(keys) else ("copy" if not linked else "mixed"),
                "mirror": str(folder)}
        (tmp / BATCH_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
        _replace_dir(tmp, dirs["current_batch"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dict(info, folder=str(dirs["current_batch"]), pulled=pulled)


def _replace_dir(new: Path, target: Path) -> None:
    """target becomes new; the old target is removed after the swap."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError:  # another file system
        shutil.move(str(src), str(dst))


def archive(settings: dict, project: str, batch_id: str) -> dict:
    """Moves the batch's mirror folder to <archive>/<project>/<batch_id>/ and, when it is the
    current batch, empties the working set. Undone by unarchive."""
    dirs = data_dirs(settings)
    src, dst = _batch_dir(dirs["mirror"], project, batch_id), _batch_dir(dirs["archive"], project, batch_id)
    if not src.is_dir():
        where = " (it is already archived)" if dst.is_dir() else ""
        raise NothingFound(f"batch {project}/{batch_id} is not in the mirror {dirs['mirror']}{where}")
    if dst.exists():
        raise StorageError(f"{dst} already exists: unarchive or remove it first")
    _move(src, dst)
    current = current_batch(settings)
    left = bool(current and current["project"] == project and current["batch_id"] == batch_id)
    if left:
        shutil.rmtree(dirs["current_batch"])
    return {"project": project, "batch_id": batch_id, "folder": str(dst), "left_working_set": left}


def unarchive(settings: dict, project: str, batch_id: str) -> dict:
    """Moves an archived batch back into the mirror and checks every file against its manifest;
    ``mismatched`` lists those that differ (the next pull re-fetches them)."""
    dirs = data_dirs(settings)
    src, dst = _batch_dir(dirs["archive"], project, batch_id), _batch_dir(dirs["mirror"], project, batch_id)
    if not src.is_dir():
        raise NothingFound(f"batch {project}/{batch_id} is not in the archive {dirs['archive']}")
    if dst.exists():
        raise StorageError(f"{dst} already exists (pulled again since?): remove the archived copy {src} "
                           "or the mirror copy first")
    _move(src, dst)
    manifest, bad, n = _local_manifest(dst), [], 0
    for e in (manifest or {}).get("entries", []):
        for info in e["files"].values():
            n += 1
            try:
                path = safe_path(dst, info["key"])
                if (path.stat().st_size, sha256_file(path)[0]) != (info["size"], info["sha256"]):
                    bad.append(info["key"])
            except (OSError, StorageError):
                bad.append(info["key"])
    return {"project": project, "batch_id": batch_id, "folder": str(dst), "verified": n - len(bad),
            "mismatched": bad, "manifest": manifest is not None}


def rename_local(settings: dict, old: str, new: str) -> None:
    """After a project rename in storage: the mirror and archive folders, the local index and the
    current batch's index file follow the new name (batch ids do not change)."""
    validate_project_name(old)
    validate_project_name(new)
    dirs = data_dirs(settings)
    for place in ("mirror", "archive"):
        src, dst = Path(dirs[place]) / old, Path(dirs[place]) / new
        if src.is_dir():
            if not dst.exists():
                _move(src, dst)
            else:  # batches pulled under the new name already: move the rest one by one
                for bid, folder in _local_batches(dirs[place], old).items():
                    if not (dst / bid).exists():
                        _move(folder, dst / bid)
    index_mod.rename_project(dirs["mirror"], old, new)
    current = current_batch(settings)
    if current and current["project"] == old:
        current["project"] = new
        (dirs["current_batch"] / BATCH_FILE).write_text(json.dumps(current, indent=1), encoding="utf-8")


# --- push -----------------------------------------------------------------------------------------
def _classify(path: Path):
    """("manifest" | "spec" | None, parsed object) of a JSON or YAML file."""
    if path.suffix.lower() in (".yaml", ".yml"):
        raw = load_spec_file(path)
        return ("spec" if isinstance(raw, dict) else None), raw
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None, None
    if isinstance(raw, dict) and "entries" in raw and "batch_id" in raw:
        return "manifest", raw
    if isinstance(raw, dict) and ("subjects" in raw or raw.get("kind")):
        return "spec", raw
    return None, raw


def push_targets(path) -> list[tuple[str, Path, dict]]:
    """(kind, file, parsed) of every job spec and manifest at path (a file, or a folder searched
    through). A single file that is neither is a usage error; in a folder such files are passed."""
    path = Path(path)
    if path.is_file():
        kind, raw = _classify(path)
        if kind is None:
            raise SpecError("push", f"{str(path)!r} is neither a job spec nor a batch manifest",
                            "a JobSpec (JSON or YAML) or a manifest.json, or a folder of them")
        return [(kind, path, raw)]
    if not path.is_dir():
        raise NothingFound(f"{str(path)!r}: no such file or folder")
    out = []
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix.lower() in (".json", ".yaml", ".yml"):
            try:
                kind, raw = _classify(f)
            except SpecError:
                continue
            if kind:
                out.append((kind, f, raw))
    return out


def push_spec(storage, raw: dict) -> dict:
    """A job spec to projects/<project>/specs/<batch_id>.json (validated first)."""
    spec = normalize_spec(raw)
    bid = spec_batch_id(spec)
    key = f"{projects_mod.prefix(spec['project'])}specs/{bid}.json"
    storage.put_bytes(key, json.dumps(raw, indent=1, sort_keys=True).encode("utf-8"))
    return {"kind": "spec", "project": spec["project"], "batch_id": bid, "key": key, "uploaded": 1}


def push_manifest(storage, manifest: dict, folder: Path, progress=None) -> dict:
    """A batch manifest into storage, written last: each file it lists that storage lacks (or
    holds with another size) is uploaded from beside the manifest first; the commit checks every
    file's sha256, so a manifest never vouches for files storage does not hold."""
    validate_manifest(manifest)
    project, bid = manifest["project"], manifest["batch_id"]
    prefix = batch_prefix(project, bid)
    have = storage.list_info(prefix)
    writer = BatchWriter(storage, project, bid)
    files = [info for e in manifest["entries"] for info in e["files"].values()]
    todo = [f for f in files if have.get(prefix + f["key"], {}).get("size") != f["size"]]
    for n, f in enumerate(todo, 1):
        local = safe_path(Path(folder).resolve(), f["key"])
        if not local.is_file():
            raise StorageError(f"{project}/{bid}: {f['key']!r} is neither in storage nor beside the manifest "
                               f"({local})")
        writer.add_file(f["key"], local)
        if progress is not None:
            progress(n, len(todo))
    writer.commit(manifest)
    return {"kind": "manifest", "project": project, "batch_id": bid, "key": prefix + MANIFEST_NAME,
            "uploaded": len(todo) + 1}
