"""Downloads a batch into the local cache: parallel, verified, atomic, resumable (DESIGN.md §3.4).

    <cache_root>/<project>/<batch_id>/openpose/v00_f0000.png ...  manifest.json (written last)

A file is written as ``<name>.part`` and renamed into place only once its size and sha256 match
the manifest, so a reader never sees a partial file under its real name. A ``.part`` left by a
broken transfer is resumed with a Range GET when the backend can (``iter_range``).

Reading the cache trusts a file only while it is what was verified: when its sha256 matched,
its size, modification and change times (ns) and inode are stamped in ``.verified.json`` beside
it. Any write to the file changes its change time, so a stamp that still matches vouches for the
bytes without hashing them again; a file without a matching stamp is hashed (and stamped when it
matches) before it is served (``verified_file``).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..errors import StorageError
from ..manifest import validate_manifest
from . import MANIFEST_NAME, batch_prefix, read_manifest, sha256_file, validate_key

PART_SUFFIX = ".part"
STAMPS_NAME = ".verified.json"  # a manifest key never starts with '.'


def download_batch(storage, project: str, batch_id: str, cache_root, names=None, workers: int = 16,
                   progress=None, attempts: int = 4, manifest: dict | None = None, on_file=None):
    """Fetches the batch's files (all, or only the passes in ``names``) into the cache; returns
    (manifest, folder). progress(done, total) is called as files finish. StorageError when the
    batch has no manifest, a file cannot be fetched, or a file does not match its hash.
    ``manifest``: the batch's manifest when the caller has just read it from storage (not read again).
    on_file(key, size, fetched): called for each file once it is in place (fetched False: it was
    already in the cache with its hash).
    Files already in the cache with their size and hash are not fetched again; the manifest is
    read from storage each call (see ``cached_batch`` for a look-up that touches no storage)."""
    prefix = batch_prefix(project, batch_id)  # a bad project or batch id: refused before any path is made
    if manifest is None:
        manifest = read_manifest(storage, project, batch_id)
    if manifest is None:
        raise StorageError(f"batch {project}/{batch_id} has no manifest: unknown or not complete")
    folder = Path(cache_root).resolve() / project / batch_id
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()

    wanted = None if names is None else set([names] if isinstance(names, str) else names)
    present = {n for e in manifest["entries"] for n in e["files"]}
    if wanted is not None and not wanted <= present:
        raise StorageError(f"batch {batch_id} has no pass {sorted(wanted - present)}; "
                           f"it has {sorted(present)}")
    jobs = [(info["key"], info["sha256"], info["size"]) for e in manifest["entries"]
            for n, info in e["files"].items() if wanted is None or n in wanted]
    targets = [safe_path(folder, key) for key, _, _ in jobs]  # refuse every unsafe key before any I/O

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_fetch, storage, prefix + key, sha, size, path, attempts)
                   for (key, sha, size), path in zip(jobs, targets)]
        try:
            for fut in as_completed(futures):
                key, size, fetched = fut.result()
                if on_file is not None:
                    on_file(key, size, fetched)
                done += 1
                if progress is not None:
                    progress(done, len(jobs))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    stamps = load_stamps(folder)
    for (key, sha, _), path in zip(jobs, targets):
        stamps[key] = _stamp(path, sha)
    save_stamps(folder, stamps)
    _write_atomic(folder / MANIFEST_NAME,
                  json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    return manifest, folder


def cached_manifest(cache_root, project: str, batch_id: str) -> dict | None:
    """The cache's copy of the batch's manifest when it is a valid manifest of this project and
    batch (validate_manifest); else None. Touches no storage."""
    batch_prefix(project, batch_id)  # a bad project or batch id is refused, never made into a path
    folder = Path(cache_root).resolve() / project / batch_id
    try:
        manifest = validate_manifest(json.loads((folder / MANIFEST_NAME).read_bytes()))
    except (OSError, ValueError, RecursionError):  # ManifestError is a ValueError
        return None
    if manifest["batch_id"] != batch_id:
        return None
    # a renamed or copied batch keeps the project it was rendered in: its folder's project is the one
    return dict(manifest, project=project)


def cached_batch(cache_root, project: str, batch_id: str, names=None, created_at=None):
    """(manifest, folder) from the cache alone, touching no storage, when the cached manifest is
    a valid one of this batch (and, when ``created_at`` is given, the same render: a forced
    re-render writes a new created_at) and every file of the passes in ``names`` (those the batch
    has; all when None) is in place with the manifest's bytes (verified_file). Else None."""
    manifest = cached_manifest(cache_root, project, batch_id)  # validates the project and batch id first
    folder = (Path(cache_root) / project / batch_id).resolve()
    if manifest is None or (created_at is not None and manifest["created_at"] != created_at):
        return None
    wanted = None if names is None else set([names] if isinstance(names, str) else names)
    stamps = load_stamps(folder)
    before = dict(stamps)
    try:
        for e in manifest["entries"]:
            for n, info in e["files"].items():
                if (wanted is None or n in wanted) and verified_file(folder, info, stamps) is None:
                    return None
    finally:
        if stamps != before:
            save_stamps(folder, stamps)
    return manifest, folder


def load_stamps(folder) -> dict:
    """{key: [size, mtime_ns, ctime_ns, inode, sha256]} of the batch folder's verified files."""
    try:
        stamps = json.loads((Path(folder) / STAMPS_NAME).read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def save_stamps(folder, stamps: dict) -> None:
    """Writes the stamps atomically (a unique temp file, then a rename); a cache that cannot be
    written is still served: its files are hashed again next time."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=STAMPS_NAME + ".", suffix=PART_SUFFIX)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(stamps, fh, sort_keys=True)
        os.replace(tmp, Path(folder) / STAMPS_NAME)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _stamp(path: Path, sha: str) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha]


def verified_file(folder, info: dict, stamps: dict) -> Path | None:
    """The cached file of a manifest file entry ({key, sha256, size}) when it holds those bytes:
    its stamp in ``stamps`` still matches the file, or its sha256 does now (then ``stamps`` gets
    its stamp). None when it is missing or differs. An unsafe key raises StorageError."""
    path = safe_path(Path(folder).resolve(), info["key"])
    try:
        if stamps.get(info["key"]) == _stamp(path, info["sha256"]):
            return path
        if not _matches(path, info["sha256"], info["size"]):
            return None
        stamps[info["key"]] = _stamp(path, info["sha256"])
    except OSError:  # missing, a folder, unreadable
        return None
    return path


def safe_path(folder: Path, key: str) -> Path:
    """The file of a manifest key inside folder; StorageError for a key that would lead outside."""
    validate_key(key)
    path = (folder / key).resolve()
    if not path.is_relative_to(folder) or path == folder:
        raise StorageError(f"manifest key {key!r} leads outside the cache folder {folder}")
    return path


def _matches(path: Path, sha: str, size: int) -> bool:
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return sha256_file(path)[0] == sha


def _fetch(storage, key: str, sha: str, size: int, path: Path, attempts: int) -> tuple[str, int, bool]:
    """(key, size, fetched): the file is in place with its hash, fetched now or found there."""
    if _matches(path, sha, size):
        return key, size, False
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + PART_SUFFIX)
    resumed = part.exists() and part.stat().st_size > 0
    _transfer(storage, key, size, part, attempts)
    if not _matches(part, sha, size) and resumed:
        part.unlink()  # the old part may belong to an older object: one more try from the start
        _transfer(storage, key, size, part, attempts)
    if not _matches(part, sha, size):
        got = part.stat().st_size
        part.unlink()
        raise StorageError(f"{key!r} does not match the manifest (got {got} bytes, expected {size} bytes "
                           f"with sha256 {sha[:12]}…)")
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, path)
    return key, size, True


def _transfer(storage, key: str, size: int, part: Path, attempts: int) -> None:
    """Fills ``part`` with the object's bytes, resuming what is there; retries broken transfers."""
    last = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(2.0, 0.1 * 2 ** attempt))
        try:
            if not hasattr(storage, "iter_range"):  # e.g. LocalStorage: no partial reads to resume
                data = storage.get_bytes(key)
                with open(part, "wb") as fh:
                    fh.write(data)
                return
            start = part.stat().st_size if part.exists() else 0
            if start > size:  # not a prefix of this object
                part.unlink()
                start = 0
            if start == size and size:
                return
            with open(part, "ab") as fh:
                for chunk in storage.iter_range(key, start):
                    fh.write(chunk)
                    if fh.tell() > size:
                        break  # longer than the manifest says: the hash check refuses it
            return
        except (ConnectionError, TimeoutError) as e:
            last = e
    raise StorageError(f"{key!r}: transfer failed {attempts} times, last: {last}")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + PART_SUFFIX)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
