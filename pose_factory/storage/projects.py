"""Projects as first-class objects in storage: create, list, rename, delete (DESIGN.md §1, §7).

    projects/<name>/project.json            {"version": 1, "display_name": ..., "created_at": ...}
    projects/<name>/batches/<batch_id>/...  the project's batches
    projects/<name>/specs/<batch_id>.json   job specs pushed from a machine
    projects/<name>/rename-journal.json     only while a rename of <name> is unfinished

A name is the slug spec.validate_project_name allows (its error shows the slug a text would
become). project.json holds no name, so a rename copies every object byte for byte (then a
display name that was the old name becomes the new one); batch ids do not change (the project is
not in the hash).

A rename writes its journal (the objects to move) first, copies every object to the new prefix,
verifies each copy (size, and the ETag or the sha256), then deletes the old objects and the
journal last. Killed at any point, running the same rename again finishes it and loses nothing.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..errors import StorageError
from ..spec import validate_project_name

PROJECT_FILE = "project.json"
JOURNAL = "rename-journal.json"
PROJECTS = "projects/"


class ProjectError(Exception):
    """A project operation that cannot be done as asked (exists, not empty, rename in progress)."""


class ProjectNotFound(ProjectError, LookupError):
    pass


def prefix(name: str) -> str:
    return f"{PROJECTS}{validate_project_name(name)}/"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_json(storage, key: str):
    try:
        return json.loads(storage.get_bytes(key))
    except StorageError:
        return None
    except (ValueError, UnicodeDecodeError):
        raise ProjectError(f"{key!r} in storage is not valid JSON; fix or delete it") from None


def _put_json(storage, key: str, obj) -> None:
    storage.put_bytes(key, json.dumps(obj, indent=1, sort_keys=True).encode("utf-8"))


def names(storage) -> list[str]:
    """Every project in storage: a folder under projects/ with a valid name, sorted."""
    found = set()
    for key in storage.list(PROJECTS):
        part = key[len(PROJECTS):].split("/", 1)
        if len(part) == 2:
            try:
                found.add(validate_project_name(part[0]))
            except ValueError:
                continue
    return sorted(found)


def exists(storage, name: str) -> bool:
    return bool(storage.list(prefix(name)))


def info(storage, name: str, keys=None) -> dict:
    """{"name", "display_name", "created_at", "batches", "objects", "bytes", "renaming_to"}. keys:
    the project's {key: {"size"}} when the caller has listed them."""
    p = prefix(name)
    keys = storage.list_info(p) if keys is None else keys
    if not keys:
        raise ProjectNotFound(f"project {name!r} not found in storage")
    meta = _read_json(storage, p + PROJECT_FILE) if p + PROJECT_FILE in keys else None
    journal = _read_json(storage, p + JOURNAL) if p + JOURNAL in keys else None
    batches = {k[len(p) + len("batches/"):].split("/", 1)[0] for k in keys if k.startswith(p + "batches/")}
    meta = meta if isinstance(meta, dict) else {}
    return {"name": name, "display_name": meta.get("display_name") or name, "created_at": meta.get("created_at"),
            "batches": len(batches), "objects": len(keys), "bytes": sum(v["size"] for v in keys.values()),
            "renaming_to": (journal or {}).get("to")}


def list_projects(storage) -> list[dict]:
    """info() of every project, from one listing of projects/."""
    by_project: dict = {}
    for key, meta in storage.list_info(PROJECTS).items():
        part = key[len(PROJECTS):].split("/", 1)
        if len(part) == 2:
            by_project.setdefault(part[0], {})[key] = meta
    out = []
    for name in sorted(by_project):
        try:
            validate_project_name(name)
        except ValueError:
            continue
        out.append(info(storage, name, by_project[name]))
    return out


def create(storage, name: str, display_name: str | None = None) -> dict:
    """Writes projects/<name>/project.json; ProjectError when the project already exists."""
    validate_project_name(name)
    if display_name is not None and (not isinstance(display_name, str) or len(display_name) > 200
                                     or any(ord(c) < 32 for c in display_name)):
        raise ProjectError(f"display name {display_name!r}: allowed: up to 200 printable characters")
    if exists(storage, name):
        raise ProjectError(f"project {name!r} already exists")
    meta = {"version": 1, "display_name": display_name or name, "created_at": _now()}
    _put_json(storage, prefix(name) + PROJECT_FILE, meta)
    return {"name": name, **meta}


def ensure(storage, name: str) -> bool:
    """Creates the project's project.json when it has none (a worker's job may create its project);
    a project made before (on the user's machine) is used unchanged. True when it was created."""
    key = prefix(name) + PROJECT_FILE
    if storage.exists(key):
        return False
    _put_json(storage, key, {"version": 1, "display_name": name, "created_at": _now()})
    return True


def delete(storage, name: str, force: bool = False) -> int:
    """Deletes every object of the project; refuses one with batches or specs unless force.
    Returns how many objects were deleted."""
    p = prefix(name)
    keys = list(storage.list_info(p))
    if not keys:
        raise ProjectNotFound(f"project {name!r} not found in storage")
    content = [k for k in keys if k not in (p + PROJECT_FILE,)]
    if content and not force:
        raise ProjectError(f"project {name!r} is not empty ({len(content)} objects, e.g. {content[0]!r}); "
                           "use --force to delete it with everything in it")
    storage.delete_many(keys)
    return len(keys)


# --- rename ---------------------------------------------------------------------------------------
def pending_rename(storage, name: str) -> str | None:
    """The target of an unfinished rename of ``name``, or None."""
    j = _read_json(storage, prefix(name) + JOURNAL)
    return j.get("to") if isinstance(j, dict) else None


def _same(storage, src: str, dst: str, a: dict, b: dict | None) -> bool:
    """dst is a byte-identical copy of src: equal sizes and single-part ETags (an MD5 of the
    bytes), else equal sha256 of both."""
    if b is None or a["size"] != b["size"]:
        return False
    ea, eb = a.get("etag"), b.get("etag")
    if ea and eb and "-" not in ea and "-" not in eb:
        return ea == eb
    return storage.sha256(src) == storage.sha256(dst)


def rename(storage, old: str, new: str, workers: int = 16, progress=None) -> dict:
    """Moves every object of projects/<old>/ to projects/<new>/ (see the module's docstring).
    Returns {"from", "to", "objects", "copied", "resumed"}. ProjectNotFound when old does not
    exist; ProjectError when new already exists or another rename of old is unfinished."""
    src_p, dst_p = prefix(old), prefix(new)
    if old == new:
        raise ProjectError(f"project {old!r}: the new name is the same as the old one")
    jkey = src_p + JOURNAL
    journal = _read_json(storage, jkey)
    resumed = isinstance(journal, dict)
    if resumed:
        if journal.get("to") != new:
            raise ProjectError(f"an unfinished rename of {old!r} to {journal.get('to')!r} is in progress: "
                               f"run the rename to {journal.get('to')!r} again to finish it first")
    else:
        src = storage.list_info(src_p)
        if not src:
            raise ProjectNotFound(f"project {old!r} not found in storage")
        if storage.list(dst_p):
            raise ProjectError(f"project {new!r} already exists: choose another name, or delete it first")
        journal = {"version": 1, "from": old, "to": new, "started_at": _now(), "phase": "copy",
                   "objects": {k[len(src_p):]: v["size"] for k, v in src.items()}}
        _put_json(storage, jkey, journal)
    rels = sorted(journal["objects"])
    copied = 0
    if journal["phase"] == "copy":
        src, dst = storage.list_info(src_p), storage.list_info(dst_p)
        missing = [r for r in rels if src_p + r not in src and dst_p + r not in dst]
        if missing:
            raise ProjectError(f"rename {old!r} -> {new!r}: {len(missing)} objects of the journal are in neither "
                               f"project (e.g. {missing[0]!r}); storage was changed during the rename")
        todo = [r for r in rels if src_p + r in src
                and not _same(storage, src_p + r, dst_p + r, src[src_p + r], dst.get(dst_p + r))]
        _parallel(lambda r: storage.copy(src_p + r, dst_p + r, size=src[src_p + r]["size"]), todo, workers,
                  progress, len(rels) - len(todo))
        copied = len(todo)
        dst = storage.list_info(dst_p)
        bad = [r for r in rels if src_p + r in src
               and not _same(storage, src_p + r, dst_p + r, src[src_p + r], dst.get(dst_p + r))]
        if bad:
            raise ProjectError(f"rename {old!r} -> {new!r}: {len(bad)} copies do not match their originals "
                               f"(e.g. {bad[0]!r}); nothing was deleted, run the rename again")
        journal["phase"] = "delete"
        _put_json(storage, jkey, journal)
    storage.delete_many([src_p + r for r in rels])
    _follow_name(storage, old, new)
    storage.delete_many([jkey])  # last: until here a second run finishes the rename
    ensure(storage, new)
    return {"from": old, "to": new, "objects": len(rels), "copied": copied, "resumed": resumed}


def _follow_name(storage, old: str, new: str) -> None:
    """A display name that was the old name (the default a project gets) becomes the new one, so
    list shows the new name after a rename (issue 21.4); one the user chose is kept."""
    key = prefix(new) + PROJECT_FILE
    meta = _read_json(storage, key)
    if isinstance(meta, dict) and meta.get("display_name") == old:
        _put_json(storage, key, dict(meta, display_name=new))


def _parallel(fn, items, workers: int, progress=None, done: int = 0) -> None:
    """fn(item) for every item on ``workers`` threads; progress(done, total) as they finish; the
    first error is raised once every started call has ended."""
    total = done + len(items)
    if progress is not None:
        progress(done, total)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(fn, item) for item in items]
        error = None
        for fut in futures:
            try:
                fut.result()
            except Exception as e:  # noqa: BLE001  re-raised below, after the rest have finished
                error = error or e
                continue
            done += 1
            if progress is not None:
                progress(done, total)
    if error is not None:
        raise error
