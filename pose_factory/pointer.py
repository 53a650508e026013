"""Where ComfyUI keeps the pack's data, for the CLI that runs without ComfyUI (issue 21.4).

Inside ComfyUI the data root is ``<ComfyUI output>/pose_factory`` (``--output-directory``
included) or the configured ``data_root``; the CLI, run from the same pack's folder, has no
``folder_paths`` to ask. So ComfyUI's side records the root it resolved in a small pointer file
each time it resolves it (``settings.record_comfyui_root``, called by the nodes), and the CLI
reads it (``settings.load_settings``). The pointer is config, not data, and lives outside the
pack (ComfyUI-Manager deletes and re-clones a pack on update), keyed by the pack's resolved path:
a re-cloned pack finds its pointer again, and two ComfyUI installs, each with its own copy of
the pack, each have their own (one checkout symlinked into two installs: the last one started)::

    <config dir>/comfyui/<sha256 of the pack's path, 16 hex>.json
        {"version": 1, "pack", "data_root", "comfyui", "output_directory", "config", "written_at"}

``<config dir>``: ``$POSE_FACTORY_POINTER_DIR`` (tests), else the user's config folder:
``$XDG_CONFIG_HOME/pose_factory`` or ``~/.config/pose_factory`` (Linux),
``~/Library/Application Support/pose_factory`` (macOS), ``%APPDATA%\\pose_factory`` (Windows).

Without a pointer (ComfyUI never started with this pack), a pack whose folder sits in
``<ComfyUI>/custom_nodes/`` is recognised by the ComfyUI tree around it (``comfyui_tree``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

VERSION = 1
log = logging.getLogger("pose_factory")
_written: dict = {}  # pointer path -> the text last written by this process (nothing to do when equal)


def pointer_dir() -> Path:
    """The folder the pointers live in (see the module's docstring)."""
    given = os.environ.get("POSE_FACTORY_POINTER_DIR")
    if given:
        return Path(given)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "pose_factory"


def pointer_path(pack) -> Path:
    """The pointer of the pack at ``pack`` (its resolved path is the key)."""
    key = hashlib.sha256(str(Path(pack).resolve()).encode("utf-8")).hexdigest()[:16]
    return pointer_dir() / "comfyui" / f"{key}.json"


def write(pack, data_root, output_directory=None, comfyui=None, config=None) -> Path | None:
    """Records the data root ComfyUI's side uses for the pack at ``pack`` (atomically; only when it
    changed). Returns the pointer's path, or None when it could not be written (logged: ComfyUI
    goes on; the CLI then falls back to the ComfyUI tree or says it has no pointer)."""
    path = pointer_path(pack)
    record = {"version": VERSION, "pack": str(Path(pack).resolve()), "data_root": str(data_root),
              "comfyui": str(comfyui) if comfyui else None,
              "output_directory": str(output_directory) if output_directory else None,
              "config": str(config) if config else None}
    text = json.dumps(record, sort_keys=True)
    if _written.get(path) == text:
        return path
    try:
        old = read_file(path)
        if old is not None and {k: v for k, v in old.items() if k != "written_at"} == record:
            _written[path] = text
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        stamped = dict(record, written_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        try:
            tmp.write_text(json.dumps(stamped, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        log.warning("3D Pose Factory: could not record the data root for the command line in %s: %s", path, e)
        return None
    _written[path] = text
    return path


def read_file(path) -> dict | None:
    """A pointer file's record, or None when it is missing or not a pointer (never an error)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != VERSION:
        return None
    root = record.get("data_root")
    if not isinstance(root, str) or "\0" in root or not os.path.isabs(root) or not isinstance(record.get("pack"), str):
        return None
    return record


def read(pack) -> dict | None:
    """The pointer ComfyUI wrote for the pack at ``pack``, with ``path`` (the pointer file) added;
    None when there is none (or it names another pack: a hash collision, or a hand-edited file)."""
    path = pointer_path(pack)
    record = read_file(path)
    if record is None or record["pack"] != str(Path(pack).resolve()):
        return None
    return dict(record, path=str(path))


def is_comfyui(folder) -> bool:
    """A ComfyUI tree: its main.py beside folder_paths.py (or the comfy/ package)."""
    folder = Path(folder)
    return (folder / "main.py").is_file() and ((folder / "folder_paths.py").is_file() or (folder / "comfy").is_dir())


def comfyui_tree(pack) -> Path | None:
    """The ComfyUI folder a pack lives in (``<ComfyUI>/custom_nodes/<pack>``), else None. The
    path is taken as given and resolved (a pack symlinked into custom_nodes/ is found from the
    link's path; from its target only through the pointer)."""
    for p in dict.fromkeys((Path(os.path.abspath(pack)), Path(pack).resolve())):
        if p.parent.name == "custom_nodes" and is_comfyui(p.parent.parent):
            return p.parent.parent
    return None
