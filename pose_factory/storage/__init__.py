"""The storage layout and the local-folder backend (DESIGN.md §4).

    projects/<project>/batches/<batch_id>/manifest.json   (written last)
    projects/<project>/batches/<batch_id>/openpose/v00_f0000.png, ...

Keys are relative POSIX paths, the same on R2 and in a local folder. A backend has the few
methods of ``Storage``; an S3/R2 backend implements the same ones. A batch without a manifest is
incomplete and never read.

A complete batch stays complete: a re-render writes its files under a new generation folder
(``gen-<12 hex>/openpose/…``) and switches the manifest, one atomic write, only once they are all
stored; then the replaced files are removed. ``batch_lock`` lets one process at a time render a
batch on a machine (a lock file, Linux, macOS and Windows alike); the others wait and share it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import ManifestError, StorageError, echo
from ..manifest import check_file_key, validate_manifest
from ..parsing import loads_json
from ..spec import validate_project_name

MANIFEST_NAME = "manifest.json"
_TMP_PREFIX = ".tmp-"  # in-flight writes; never listed
_LOCK_DIR = ".locks"   # batch_lock's files in a local storage root; never listed
_BATCH_RE = re.compile(r"[0-9a-f]{16}")
MAX_KEY_PART_BYTES = 255  # a file or folder name (NAME_MAX: Linux, macOS; Windows counts 255 characters)
MAX_KEY_BYTES = 1024  # a whole key (S3's and R2's limit); also keeps a local path within PATH_MAX
log = logging.getLogger("pose_factory.storage")


def validate_key(key) -> str:
    """key when it is a safe relative POSIX key that a folder and a bucket can both hold, else
    StorageError naming it (and the limit it passes)."""
    bad = (not isinstance(key, str) or not key or key.startswith("/") or "\\" in key or "\0" in key
           or ":" in key.split("/")[0]  # C:/... on Windows
           or any(part in ("", ".", "..") for part in key.split("/")))
    if bad:
        raise StorageError(f"unsafe storage key {echo(key)}: expected a relative path like 'a/b.png' "
                           f"(no '..', '.', empty parts, leading '/', backslash or NUL)")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no file system or bucket takes it
        raise StorageError(f"storage key {echo(key)} is not valid Unicode: expected UTF-8 text") from None
    longest = max(key.split("/"), key=lambda part: len(part.encode("utf-8")))
    if len(longest.encode("utf-8")) > MAX_KEY_PART_BYTES:
        raise StorageError(f"storage key {echo(key)}: its part {echo(longest, 40)} is "
                           f"{len(longest.encode('utf-8'))} bytes, allowed: at most {MAX_KEY_PART_BYTES} bytes a "
                           "file or folder name (the file system's limit)")
    if size > MAX_KEY_BYTES:
        raise StorageError(f"storage key {echo(key)} is {size} bytes, allowed: at most {MAX_KEY_BYTES} bytes "
                           "(the S3/R2 limit of a key)")
    return key


def check_prefix(prefix) -> str:
    """A list prefix: a string ('' for everything) whose folders a key could have, else
    StorageError naming the argument; the same rules on every backend."""
    if not isinstance(prefix, str):
        raise StorageError(f"storage list prefix: got {echo(prefix, 60)} ({type(prefix).__name__}), "
                           "expected a string such as 'projects/' ('' for every key)")
    if prefix.rstrip("/"):
        validate_key(prefix.rstrip("/"))
    return prefix


def batch_prefix(project: str, batch_id: str) -> str:
    validate_project_name(project)
    if not isinstance(batch_id, str) or not _BATCH_RE.fullmatch(batch_id):
        raise StorageError(f"batch id {echo(batch_id)}: expected 16 lowercase hex digits")
    return f"projects/{project}/batches/{batch_id}/"


def manifest_key(project: str, batch_id: str) -> str:
    return batch_prefix(project, batch_id) + MANIFEST_NAME


@runtime_checkable
class Storage(Protocol):
    """What the rest of the pack needs from a backend (local folder now, S3/R2 later)."""

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, src_path) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def list_info(self, prefix: str = "") -> dict: ...
    def copy(self, src_key: str, dst_key: str, size: int | None = None) -> None: ...
    def sha256(self, key: str) -> str: ...
    def delete(self, key: str) -> None: ...
    def delete_many(self, keys) -> None: ...
    def check(self) -> None: ...  # StorageError when it cannot be written (e.g. no such bucket)


class LocalStorage:
    """A folder as storage. Writes are atomic: a temporary file in the target's folder, fsync,
    then os.replace, so a reader sees the old file or the whole new one, never a part."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        p = (self.root / validate_key(key)).resolve()
        if p != self.root and not p.is_relative_to(self.root):  # e.g. through a symlink
            raise StorageError(f"storage key {key!r} leads outside the storage root {self.root}")
        return p

    def local_path(self, key: str) -> Path:
        """The file (or, for a prefix ending in '/', the folder) of a key."""
        return self._path(key.rstrip("/")) if key.strip("/") else self.root

    def _write(self, key: str, fill) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; stored files are ordinary files
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(path.parent)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda fh: fh.write(data))

    def put_file(self, key: str, src_path) -> None:
        def copy(fh):
            with open(src_path, "rb") as src:
                while chunk := src.read(1 << 20):
                    fh.write(chunk)
        self._write(key, copy)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no such key {key!r} in {self.root}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def check(self) -> None:
        """StorageError when the root cannot be written, before any work is done for it."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise StorageError(f"storage folder {self.root} is not a writable folder: check storage.local_root")

    def lock_dir(self) -> Path:
        return self.root / _LOCK_DIR

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def delete_many(self, keys) -> None:
        """Deletes keys, then the folders they leave empty (a deleted project leaves no folder)."""
        folders = set()
        for key in keys:
            self.delete(key)
            folders.add(self._path(key).parent)
        for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
            while folder != self.root and folder.is_relative_to(self.root):
                try:
                    folder.rmdir()
                except OSError:  # not empty (or gone): its parents are not empty either
                    break
                folder = folder.parent

    def list(self, prefix: str = "") -> list[str]:
        """Every key that starts with prefix (a plain string prefix, as S3 lists), sorted."""
        return sorted(self._walk(check_prefix(prefix)))

    def list_info(self, prefix: str = "") -> dict:
        """{key: {"size": bytes, "etag": None}} of every key under prefix (a folder has no etags:
        compare contents by hash)."""
        found = self._walk(check_prefix(prefix))
        return {k: {"size": p.stat().st_size, "etag": None} for k, p in sorted(found.items())}

    def _walk(self, prefix: str) -> dict:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.local_path(folder + "/") if folder else self.root
        if not base.is_dir():
            return {}
        found = {}
        for dirpath, dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            if rel == ".":
                dirs[:] = [d for d in dirs if d != _LOCK_DIR]
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(_TMP_PREFIX) and key.startswith(prefix):
                    found[key] = Path(dirpath) / name
        return found

    def copy(self, src_key: str, dst_key: str, size: int | None = None) -> None:
        """dst_key becomes a copy of src_key (written atomically); size: unused here (S3's hint)."""
        src = self._path(src_key)
        if not src.is_file():
            raise StorageError(f"no such key {src_key!r} in {self.root}")
        self.put_file(dst_key, src)

    def sha256(self, key: str) -> str:
        return sha256_file(self._path(key))[0]


def _fsync_dir(folder: Path) -> None:
    """Makes the rename itself durable (POSIX; Windows cannot open a folder)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class BatchWriter:
    """Writes one batch: files first, ``manifest.json`` last (commit). Until commit the batch has
    no manifest, so a writer that dies half-way leaves an incomplete batch nobody loads.

    When the batch is already complete (a forced re-render), the new files go under a new
    generation folder, so the old manifest and every file it lists stay as they were until
    commit switches the manifest; commit then removes the files only the old manifest listed."""

    def __init__(self, storage: Storage, project: str, batch_id: str):
        self.storage, self.project, self.batch_id = storage, project, batch_id
        self.prefix = batch_prefix(project, batch_id)
        self.written: dict[str, tuple[str, int]] = {}  # file key -> (sha256, size)
        self.generation: str | None = None  # "gen-…/" for a re-render, decided at the first file

    def add_file(self, name_key: str, path_or_bytes) -> dict:
        """Stores one file of the batch under its key ('openpose/v00_f0000.png', prefixed with
        the generation in a re-render); returns the manifest's {key, sha256, size} for it."""
        check_file_key(name_key, "key")
        if self.generation is None:
            replacing = self.storage.exists(self.prefix + MANIFEST_NAME)
            self.generation = f"gen-{secrets.token_hex(6)}/" if replacing else ""
        key = name_key if name_key.startswith("gen-") else self.generation + name_key
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
            sha, size = hashlib.sha256(data).hexdigest(), len(data)
            self.storage.put_bytes(self.prefix + key, data)
        else:
            sha, size = sha256_file(path_or_bytes)
            self.storage.put_file(self.prefix + key, path_or_bytes)
        self.written[key] = (sha, size)
        return {"key": key, "sha256": sha, "size": size}

    def _check(self, key: str, sha: str, size: int) -> None:
        if key in self.written:
            got = self.written[key]
        elif self.storage.exists(self.prefix + key):  # written by another writer (e.g. a shard)
            data = self.storage.get_bytes(self.prefix + key)
            got = (hashlib.sha256(data).hexdigest(), len(data))
        else:
            raise StorageError(f"manifest lists {self.prefix + key!r}, which was never written")
        if got != (sha, size):
            raise StorageError(f"{self.prefix + key!r} holds sha256 {got[0][:12]}… ({got[1]} bytes), "
                               f"the manifest says {sha[:12]}… ({size} bytes)")

    def commit(self, manifest: dict) -> dict:
        """Validates the manifest, checks every file it lists is stored with that hash, then
        writes manifest.json (replacing the previous one in one write), then removes the files
        of the batch it replaced (those the previous manifest listed, and any other file under
        the batch a killed re-render left)."""
        validate_manifest(manifest)
        if manifest["batch_id"] != self.batch_id or manifest["project"] != self.project:
            raise StorageError(f"manifest is for {manifest['project']}/{manifest['batch_id']}, "
                               f"this writer for {self.project}/{self.batch_id}")
        new_keys = set()
        for entry in manifest["entries"]:
            for info in entry["files"].values():
                self._check(info["key"], info["sha256"], info["size"])
                new_keys.add(info["key"])
        old_keys = _listed_keys(self.storage, self.project, self.batch_id)
        data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        self.storage.put_bytes(self.prefix + MANIFEST_NAME, data)
        stale = old_keys - new_keys
        if old_keys:  # a re-render: also what an earlier, killed re-render left in its generation
            stale |= {k[len(self.prefix):] for k in self.storage.list(self.prefix)} - new_keys - {MANIFEST_NAME}
        for key in sorted(stale):  # a failure leaves garbage only
            try:
                self.storage.delete(self.prefix + key)
            except (StorageError, OSError) as e:
                log.warning("could not remove replaced file %s: %s", self.prefix + key, e)
        return manifest


def _listed_keys(storage: Storage, project: str, batch_id: str) -> set:
    """The file keys the batch's current manifest lists (none when it has none or it is broken)."""
    try:
        m = read_manifest(storage, project, batch_id)
    except (ManifestError, StorageError):
        return set()
    return set() if m is None else {i["key"] for e in m["entries"] for i in e["files"].values()}


def read_manifest(storage: Storage, project: str, batch_id: str) -> dict | None:
    """The batch's validated manifest, or None when it has none (unknown or incomplete batch)."""
    key = manifest_key(project, batch_id)
    if not storage.exists(key):
        return None
    m = loads_json(storage.get_bytes(key), lambda message: ManifestError(key, message))
    validate_manifest(m)
    if m["batch_id"] != batch_id:
        raise ManifestError("batch_id", f"got {m['batch_id']!r} in the manifest stored under {batch_id!r}")
    # the folder's project is the batch's project: a renamed (or copied) project's manifests keep the
    # name they were rendered under, and are never indexed or cached under that other name
    m["project"] = project
    return m


def list_batches(storage: Storage, project: str) -> list[str]:
    """Ids of the project's complete batches (those with a manifest), sorted."""
    prefix = f"projects/{validate_project_name(project)}/batches/"
    ids = []
    for key in storage.list(prefix):
        parts = key[len(prefix):].split("/")
        if len(parts) == 2 and parts[1] == MANIFEST_NAME and _BATCH_RE.fullmatch(parts[0]):
            ids.append(parts[0])
    return ids


def lock_dir(storage) -> Path:
    """Where batch_lock keeps its files: the local storage root's .locks folder, else a folder of
    this machine's temp dir named after the storage (bucket and endpoint)."""
    if hasattr(storage, "lock_dir"):
        return Path(storage.lock_dir())
    name = hashlib.sha256(repr(storage).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "pose-factory-locks" / name


@contextmanager
def batch_lock(storage, project: str, batch_id: str, check=None, role: str = "render"):
    """Holds the machine-wide lock of one batch, waiting for it (a lock file through the
    filelock library: flock on POSIX, msvcrt on Windows; the OS releases it if the holder dies).
    check: called about ten times a second while waiting; what it raises ends the wait.
    role: "render" (the worker) or "submit" (a client sending the job elsewhere): separate locks,
    so a client holding its own never blocks a worker on the same machine."""
    from filelock import FileLock, Timeout

    lock = _file_lock(storage, project, batch_id, FileLock, role)
    while True:
        if check is not None:
            check()
        try:
            lock.acquire(timeout=None if check is None else 0.1)
            break
        except Timeout:
            continue
    try:
        yield
    finally:
        lock.release()


def _file_lock(storage, project, batch_id, cls, role="render"):
    folder = lock_dir(storage)
    folder.mkdir(parents=True, exist_ok=True)
    batch_prefix(project, batch_id)  # validates both
    name = f"{project}.{batch_id}" + ("" if role == "render" else f".{role}")
    return cls(str(folder / f"{name}.lock"))


class batch_lock_async:
    """``async with batch_lock_async(storage, project, batch_id):`` — batch_lock for an event
    loop: it polls, so the loop stays free and a cancelled waiter leaves nothing held."""

    POLL_S = 0.2

    def __init__(self, storage, project: str, batch_id: str):
        from filelock import FileLock

        self._lock = _file_lock(storage, project, batch_id, FileLock)

    async def __aenter__(self):
        import asyncio

        from filelock import Timeout

        while True:
            try:
                self._lock.acquire(blocking=False)
                return self
            except Timeout:
                await asyncio.sleep(self.POLL_S)

    async def __aexit__(self, *exc):
        self._lock.release()
