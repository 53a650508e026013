"""The storage layout and the local-folder backend (DESIGN.md §4).

    projects/<project>/batches/<batch_id>/manifest.json   (written last)
    projects/<project>/batches/<batch_id>/openpose/v00_f0000.png, ...

Keys are relative POSIX paths, the same on R2 and in a local folder. A backend has the few
methods of ``Storage``; an S3/R2 backend implements the same ones. A batch without a manifest is
incomplete and never read.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import ManifestError, StorageError
from .manifest import check_file_key, validate_manifest
from .spec import validate_project_name

MANIFEST_NAME = "manifest.json"
_TMP_PREFIX = ".tmp-"  # in-flight writes; never listed
_BATCH_RE = re.compile(r"[0-9a-f]{16}")


def validate_key(key) -> str:
    """key when it is a safe relative POSIX key, else StorageError naming it."""
    bad = (not isinstance(key, str) or not key or key.startswith("/") or "\\" in key or "\0" in key
           or ":" in key.split("/")[0]  # C:/... on Windows
           or any(part in ("", ".", "..") for part in key.split("/")))
    if bad:
        raise StorageError(f"unsafe storage key {key!r}: expected a relative path like 'a/b.png' "
                           f"(no '..', '.', empty parts, leading '/', backslash or NUL)")
    return key


def batch_prefix(project: str, batch_id: str) -> str:
    validate_project_name(project)
    if not isinstance(batch_id, str) or not _BATCH_RE.fullmatch(batch_id):
        raise StorageError(f"batch id {batch_id!r}: expected 16 lowercase hex digits")
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
    def delete(self, key: str) -> None: ...


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

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def list(self, prefix: str = "") -> list[str]:
        """Every key that starts with prefix (a plain string prefix, as S3 lists), sorted."""
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.local_path(folder + "/") if folder else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(_TMP_PREFIX) and key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


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
    no manifest, so a writer that dies half-way leaves an incomplete batch nobody loads."""

    def __init__(self, storage: Storage, project: str, batch_id: str):
        self.storage, self.project, self.batch_id = storage, project, batch_id
        self.prefix = batch_prefix(project, batch_id)
        self.written: dict[str, tuple[str, int]] = {}  # file key -> (sha256, size)

    def add_file(self, name_key: str, path_or_bytes) -> dict:
        """Stores one file of the batch under its key ('openpose/v00_f0000.png'); returns the
        manifest's {key, sha256, size} for it."""
        check_file_key(name_key, "key")
        if not self.written:  # a re-render: the old manifest must not vouch for new files
            self.storage.delete(self.prefix + MANIFEST_NAME)
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
            sha, size = hashlib.sha256(data).hexdigest(), len(data)
            self.storage.put_bytes(self.prefix + name_key, data)
        else:
            sha, size = sha256_file(path_or_bytes)
            self.storage.put_file(self.prefix + name_key, path_or_bytes)
        self.written[name_key] = (sha, size)
        return {"key": name_key, "sha256": sha, "size": size}

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
        writes manifest.json."""
        validate_manifest(manifest)
        if manifest["batch_id"] != self.batch_id or manifest["project"] != self.project:
            raise StorageError(f"manifest is for {manifest['project']}/{manifest['batch_id']}, "
                               f"this writer for {self.project}/{self.batch_id}")
        for entry in manifest["entries"]:
            for info in entry["files"].values():
                self._check(info["key"], info["sha256"], info["size"])
        data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        self.storage.put_bytes(self.prefix + MANIFEST_NAME, data)
        return manifest


def read_manifest(storage: Storage, project: str, batch_id: str) -> dict | None:
    """The batch's validated manifest, or None when it has none (unknown or incomplete batch)."""
    key = manifest_key(project, batch_id)
    if not storage.exists(key):
        return None
    try:
        m = json.loads(storage.get_bytes(key))
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(key, f"not valid JSON ({e})") from None
    validate_manifest(m)
    if m["batch_id"] != batch_id:
        raise ManifestError("batch_id", f"got {m['batch_id']!r} in the manifest stored under {batch_id!r}")
    if m["project"] != project:  # never indexed or cached under another project than its folder's
        raise ManifestError("project", f"got {m['project']!r} in the manifest stored under project {project!r}, "
                                       f"expected {project!r}")
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
