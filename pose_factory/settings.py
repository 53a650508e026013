"""The pack's settings: non-secret keys from the config file, secrets from the environment or .env.

    settings = load_settings()            # config/local.yaml if present, else the defaults
    settings["runpod"]["max_shard_views"] # every key of config/local.example.yaml, validated
    env = load_env()                      # os.environ over the pack's git-ignored .env

The config file is YAML (``$POSE_FACTORY_CONFIG``, else ``config/local.yaml`` beside the pack);
a key left out takes its default, an unknown key or a wrong value is refused with the key named.
Relative paths are relative to the pack's folder. Secrets never come from here (DESIGN.md §4).

Everything the pack keeps (storage, download cache and index, cost ledger, logs) lives under one
data root, ``data_root(settings)``, and ``settings["data_root_from"]`` says why it is that one:
  1. the configured ``data_root``;
  2. inside ComfyUI: ``<ComfyUI output>/pose_factory`` (ComfyUI's ``folder_paths``, so
     ``--output-directory`` counts; never inside ``custom_nodes/``, which ComfyUI-Manager deletes on
     update); the nodes record the root they use in a pointer (``record_comfyui_root``, pointer.py);
  3. outside ComfyUI (the CLI): the root that pointer names, when ComfyUI has run with this pack;
  4. a pack in ``<ComfyUI>/custom_nodes/`` that ComfyUI has not loaded yet: ``<ComfyUI>/output/pose_factory``;
  5. else (a checkout: tests, development) the pack's ``data/``.
So the CLI run from the pack's folder sees what ComfyUI sees and writes nothing inside a pack that
lives in ComfyUI. A path key left empty takes its place under the data root (``DATA_LAYOUT``);
``migrate_pack_data`` moves an older in-pack ``data/`` there once.
"""
from __future__ import annotations

import copy
import filecmp
import logging
import math
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from . import pointer
from .jobs.budget import DEFAULT_MONTHLY_LIMIT_USD, DEFAULT_STARTUP_S, PRICES_PER_SECOND
from .errors import clip, echo
from .parsing import decode_utf8, loads_yaml
from .spec import validate_project_name

PACK_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACK_ROOT / "config" / "local.yaml"
DEFAULT_ENV_FILE = PACK_ROOT / ".env"
PACK_DATA = PACK_ROOT / "data"          # the data root outside ComfyUI (and where older versions kept it)
COMFYUI_DATA_NAME = "pose_factory"     # the data root inside ComfyUI: <output directory>/pose_factory

DEFAULTS = {
    "project": "default",
    "data_root": "",
    "storage": {"backend": "local", "local_root": "", "cache_root": ""},
    "worker_python": "",
    "client": "local",
    "runpod": {"gpu_class": "24gb", "idle_timeout_s": 5, "startup_s": DEFAULT_STARTUP_S, "max_shard_views": 8,
               "poll_interval_s": 2, "job_timeout_s": 1800, "speed_factor": 1.0,
               "url_base": "https://api.runpod.ai/v2"},
    "budget": {"monthly_gpu_limit_usd": DEFAULT_MONTHLY_LIMIT_USD, "ledger_path": ""},
    # the sync CLI: storage.cache_root is the mirror (raw/); these sit beside it under the data root
    "sync": {"working_root": "", "archive_root": "", "parallel_transfers": 16},
    "limits": {"max_images": 8192, "max_megapixels": 8192, "max_render_s": 14400},
}
# Where an empty path key points, under the data root.
DATA_LAYOUT = {("storage", "local_root"): "storage", ("storage", "cache_root"): "raw",
               ("budget", "ledger_path"): "budget/ledger.sqlite", ("sync", "working_root"): "working",
               ("sync", "archive_root"): "archive"}
SECRET_NAMES = ("CLOUDFLARE_R2_ACCESS_KEY_ID", "CLOUDFLARE_R2_SECRET_ACCESS_KEY", "RUNPOD_API_KEY")
PATH_KEYS = tuple(DATA_LAYOUT)
CURRENT_BATCH = "current_batch"  # the active batch's folder under sync.working_root
log = logging.getLogger("pose_factory")


class SettingsError(ValueError):
    """A config key or .env line is wrong; the message names it and what is allowed."""

    def __init__(self, message: str = "", *args):
        super().__init__(clip(message), *args)


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number(value, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) \
            or not lo <= value <= hi:
        raise SettingsError(f"config {key}: got {echo(value)}, allowed: a number from {lo:g} to {hi:g}")
    return value


def _choice(value, key: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SettingsError(f"config {key}: got {echo(value)}, allowed: {', '.join(allowed)}")
    return value


URL_RULE = ("an http:// or https:// URL with a host name, e.g. https://api.runpod.ai/v2 or "
            "http://127.0.0.1:8080/v2 (no spaces, no user:password@, no ?query or #fragment)")


def _url(value, key: str) -> str:
    """An http(s) base URL with a host: 'http://', 'api.runpod.ai/v2', 'ftp://x' and 'https://a b'
    are refused, with the key named."""
    why = None
    if not isinstance(value, str):
        why = "not a text"
    elif not value.strip() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        why = "contains spaces or control characters" if value.strip() else "empty"
    else:
        parts = urlsplit(value)
        try:
            port_ok = parts.port is None or parts.port >= 0  # a port not from 0 to 65535 raises ValueError
        except ValueError:
            port_ok = False
        if not port_ok:
            why = "its port is not a number from 0 to 65535"
        elif not parts.scheme or "://" not in value:
            why = "it does not start with http:// or https://"
        elif parts.scheme.lower() not in ("http", "https"):
            why = f"unsupported scheme {parts.scheme!r}"
        elif not parts.hostname:
            why = "no host"
        elif "@" in parts.netloc:
            why = "a user name or password in it (credentials come from the environment)"
        elif parts.query or parts.fragment or value.endswith(("?", "#")):
            why = "a ?query or #fragment"
    if why:
        shown = echo(value) if not (isinstance(value, str) and "@" in value) else "a URL with user:password@"
        raise SettingsError(f"config {key}: got {shown} ({why}), allowed: {URL_RULE}")
    return value


def _merge(defaults: dict, given, where: str) -> dict:
    if not isinstance(given, dict):
        raise SettingsError(f"config {where or 'file'}: expected a mapping of keys, got {type(given).__name__}")
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        name = f"{where}.{echo(key, 60) if not isinstance(key, str) else clip(key, 60)}" if where \
            else (clip(key, 60) if isinstance(key, str) else echo(key, 60))
        if key not in defaults:
            raise SettingsError(f"config {name}: unknown key, allowed: {', '.join(defaults)}")
        out[key] = _merge(defaults[key], value, name) if isinstance(defaults[key], dict) else value
    return out


def validate_settings(s: dict) -> dict:
    try:
        validate_project_name(s["project"])
    except ValueError as e:
        raise SettingsError(f"config {e}") from None
    _choice(s["storage"]["backend"], "storage.backend", ("local", "r2"))
    _choice(s["client"], "client", ("local", "runpod"))
    for section, key in PATH_KEYS:
        if not isinstance(s[section][key], str):
            raise SettingsError(f"config {section}.{key}: got {echo(s[section][key])}, "
                                f"allowed: a path, or empty for <data_root>/{DATA_LAYOUT[section, key]}")
        if "\0" in s[section][key]:
            raise SettingsError(f"config {section}.{key}: contains a NUL character, allowed: a folder or file path")
    if not isinstance(s["data_root"], str) or "\0" in s["data_root"]:
        raise SettingsError(f"config data_root: got {echo(s['data_root'])}, allowed: a folder path, or empty "
                            "for the default (ComfyUI's <output>/pose_factory, else the pack's data/)")
    if not isinstance(s["worker_python"], str):
        raise SettingsError(f"config worker_python: got {echo(s['worker_python'])}, allowed: a path or empty")
    rp = s["runpod"]
    _choice(rp["gpu_class"], "runpod.gpu_class", tuple(PRICES_PER_SECOND))
    _number(rp["idle_timeout_s"], "runpod.idle_timeout_s", 0, 3600)
    _number(rp["startup_s"], "runpod.startup_s", 0, 3600)
    _number(rp["poll_interval_s"], "runpod.poll_interval_s", 0.05, 60)
    _number(rp["job_timeout_s"], "runpod.job_timeout_s", 1, 86400)
    _number(rp["speed_factor"], "runpod.speed_factor", 0.001, 1000)
    if isinstance(rp["max_shard_views"], bool) or not isinstance(rp["max_shard_views"], int) \
            or not 1 <= rp["max_shard_views"] <= 64:
        raise SettingsError(f"config runpod.max_shard_views: got {echo(rp['max_shard_views'])}, "
                            "allowed: an integer from 1 to 64")
    _url(rp["url_base"], "runpod.url_base")
    _number(s["budget"]["monthly_gpu_limit_usd"], "budget.monthly_gpu_limit_usd", 0, 1e6)
    par = s["sync"]["parallel_transfers"]
    if isinstance(par, bool) or not isinstance(par, int) or not 1 <= par <= 64:
        raise SettingsError(f"config sync.parallel_transfers: got {par!r}, allowed: an integer from 1 to 64")
    for key in ("max_images", "max_megapixels", "max_render_s"):
        _number(s["limits"][key], f"limits.{key}", 1, 1e9)
    return s


def comfyui_data_root() -> Path | None:
    """<ComfyUI's output directory>/pose_factory when this runs inside ComfyUI, else None.
    ComfyUI's ``folder_paths`` is imported here, lazily: the core imports without ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return None
    get_output = getattr(folder_paths, "get_output_directory", None)
    if get_output is None:
        return None
    return Path(get_output()).resolve() / COMFYUI_DATA_NAME


def _pack_paths() -> list[Path]:
    """The pack's folder, and the path the shell reached it by when that is another (a pack
    symlinked into custom_nodes/, the CLI started from the link: os.getcwd() gives the target)."""
    out = [PACK_ROOT]
    logical = os.environ.get("PWD")
    try:
        if logical and os.path.isabs(logical) and Path(logical) != PACK_ROOT and os.path.samefile(logical, PACK_ROOT):
            out.append(Path(logical))
    except OSError:
        pass
    return out


def comfyui_tree() -> Path | None:
    """The ComfyUI folder the pack lives in (``<ComfyUI>/custom_nodes/<pack>``), else None."""
    for pack in _pack_paths():
        tree = pointer.comfyui_tree(pack)
        if tree is not None:
            return tree
    return None


def default_data_root_and_reason() -> tuple[Path, str]:
    """The data root when none is configured, and why (the module's docstring, steps 2 to 5)."""
    inside = comfyui_data_root()
    if inside is not None:
        return inside, f"ComfyUI's output directory {inside.parent} (this process runs inside ComfyUI)"
    recorded = pointer.read(PACK_ROOT)
    stale = ""
    if recorded is not None:
        if Path(recorded["data_root"]).parent.is_dir():  # ComfyUI makes its root on first use, its parent at start
            return Path(recorded["data_root"]), (f"the pointer ComfyUI wrote at {recorded.get('written_at') or '?'} "
                                                 f"({recorded['path']})")
        # a root whose folder is gone (a scratch folder, a moved output directory) is not made again
        stale = (f"; ComfyUI's pointer ({recorded['path']}) names {recorded['data_root']}, "
                 f"which no longer exists")
    tree = comfyui_tree()
    if tree is not None:
        return tree / "output" / COMFYUI_DATA_NAME, (
            f"the ComfyUI tree around the pack ({tree}): its default output folder; ComfyUI has not recorded "
            f"its data root yet (start it once with this pack if it runs with --output-directory){stale}")
    return PACK_DATA, ("the pack's data/ (a checkout outside ComfyUI; no pointer from a ComfyUI for this pack)"
                       if not stale else f"the pack's data/ (a checkout outside ComfyUI{stale})")


def default_data_root() -> Path:
    """The data root when none is configured (default_data_root_and_reason)."""
    return default_data_root_and_reason()[0]


def record_comfyui_root(settings: dict) -> Path | None:
    """Inside ComfyUI: writes the pointer naming the data root these settings use, for the CLI
    (pointer.py; only when it changed). Returns the pointer's path; None outside ComfyUI or when it
    could not be written (logged, never raised: the nodes go on)."""
    try:
        import folder_paths
    except ImportError:
        return None
    if getattr(folder_paths, "get_output_directory", None) is None:
        return None
    config = os.environ.get("POSE_FACTORY_CONFIG") or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    return pointer.write(PACK_ROOT, settings["data_root"], folder_paths.get_output_directory(),
                         getattr(folder_paths, "base_path", None), Path(config).resolve() if config else None)


def data_root(settings: dict | None = None) -> Path:
    """The one folder everything the pack keeps lives under (absolute): storage, cache and index
    (raw/), ledger (budget/), logs, and what the sync CLI adds beside them."""
    return Path((settings or load_settings())["data_root"])


def load_settings(path=None, overrides: dict | None = None) -> dict:
    """Defaults, then the config file (when it exists), then overrides; validated. ``data_root``
    resolved (empty: ``default_data_root()``); an empty path key becomes its place under it
    (``DATA_LAYOUT``); a configured path is made absolute against the pack's folder."""
    path = Path(path or os.environ.get("POSE_FACTORY_CONFIG") or DEFAULT_CONFIG)
    s = copy.deepcopy(DEFAULTS)
    if path.is_file():
        def error(message):
            return SettingsError(f"config file {path}: {message}")

        given = loads_yaml(decode_utf8(path.read_bytes(), error), error)
        s = _merge(s, {} if given is None else given, "")
    elif path != DEFAULT_CONFIG:
        raise SettingsError(f"config file {path}: not found")
    if overrides:
        s = _merge(s, overrides, "")
    validate_settings(s)
    if s["data_root"]:
        root = (PACK_ROOT / s["data_root"]).resolve()
        why = "data_root given to this command" if (overrides or {}).get("data_root") \
            else f"data_root in the config file {path}"
    else:
        root, why = default_data_root_and_reason()
    s["data_root"], s["data_root_from"] = str(root), why
    for section, key in PATH_KEYS:
        given = s[section][key]
        s[section][key] = str((PACK_ROOT / given).resolve() if given else root / DATA_LAYOUT[section, key])
    return s


# --- moving an in-pack data/ out, once -------------------------------------------------------------
_MOVING = ".pose_factory_moving"  # suffix of a half-copied file (a copy across file systems)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _move_file(src: Path, dst: Path) -> None:
    """src -> dst without ever replacing an existing dst: a hard link (same file system) or a copy
    to a temporary name then a link, and only then src removed. Interrupted, both may exist (the
    next run sees equal files and drops src); nothing is lost."""
    try:
        os.link(src, dst)  # fails if dst exists: never overwrites
    except FileExistsError:
        raise
    except OSError:  # another file system, or no hard links there
        tmp = dst.with_name(dst.name + _MOVING)
        shutil.copy2(src, tmp)
        try:
            os.link(tmp, dst)
        except FileExistsError:
            tmp.unlink()
            raise
        except OSError:  # no hard links at all: rename, after one more check
            if dst.exists():
                tmp.unlink()
                raise FileExistsError(dst) from None
            os.replace(tmp, dst)
        else:
            tmp.unlink()
    src.unlink()


def move_tree(src: Path, dst: Path) -> list[Path]:
    """Moves every file under src to the same place under dst, never overwriting: a file already
    at dst with the same bytes is dropped from src, one with other bytes stays in src. Empty
    folders left in src are removed. Returns the files kept in src."""
    kept = []
    for folder, _, files in os.walk(src, topdown=True):
        here = Path(folder)
        there = dst / here.relative_to(src)
        there.mkdir(parents=True, exist_ok=True)
        for stale in there.glob("*" + _MOVING):  # left by an interrupted copy
            stale.unlink(missing_ok=True)
        for name in sorted(files):
            if name.endswith(_MOVING):
                continue
            a, b = here / name, there / name
            try:
                _move_file(a, b)
            except FileExistsError:
                if _same_file(a, b):
                    a.unlink()
                else:
                    kept.append(a)
    for folder, _, _ in sorted(os.walk(src), key=lambda t: -len(t[0])):  # deepest first
        try:
            os.rmdir(folder)
        except OSError:  # not empty: a kept file
            pass
    return kept


def migrate_pack_data(settings: dict | None = None, pack_data: Path = PACK_DATA) -> list[Path]:
    """Moves what an older version kept in the pack's data/ to the data root, once (afterwards
    data/ is gone), when the data root is ComfyUI's default (<output>/pose_factory); a configured
    data_root is the user's choice, and a checkout's data/ is never moved into it (a test or a
    harness may point it at a temporary folder). A top-level entry of data/ that a configured path
    still points into stays. Returns the files left in data/ (a different file of the same name
    already at the data root: never overwritten); logs what it did."""
    settings = settings or load_settings()
    root = Path(settings["data_root"])
    pack_data = Path(pack_data).resolve()
    if not pack_data.is_dir() or root != comfyui_data_root() or root.is_relative_to(pack_data):
        return []
    in_use = {pack_data / Path(settings[s][k]).relative_to(pack_data).parts[0] for s, k in PATH_KEYS
              if Path(settings[s][k]).is_relative_to(pack_data) and Path(settings[s][k]) != pack_data}
    kept = []
    for entry in sorted(pack_data.iterdir()):
        if entry in in_use:
            continue
        if entry.is_dir() and not entry.is_symlink():
            kept += move_tree(entry, root / entry.name)
        else:
            root.mkdir(parents=True, exist_ok=True)
            try:
                _move_file(entry, root / entry.name)
            except FileExistsError:
                if _same_file(entry, root / entry.name):
                    entry.unlink()
                else:
                    kept.append(entry)
    try:
        pack_data.rmdir()
        log.info("3D Pose Factory: moved the pack's data/ to %s", root)
    except OSError:
        if kept:
            log.warning("3D Pose Factory: moved the pack's data/ to %s except %d file(s) that differ from one "
                        "already there (kept in %s, e.g. %s)", root, len(kept), pack_data, kept[0])
    return kept


def data_dirs(settings: dict) -> dict:
    """The local data folders (DESIGN.md §7), all from the loaded settings: ``mirror`` (read-only
    copy of storage, written only by pulls and loaders; storage.cache_root), ``working`` and its
    ``current_batch``, and ``archive``. Every command that writes locally takes its paths here."""
    working = Path(settings["sync"]["working_root"])
    return {"mirror": Path(settings["storage"]["cache_root"]), "working": working,
            "current_batch": working / CURRENT_BATCH, "archive": Path(settings["sync"]["archive_root"])}


_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def read_env_file(path) -> dict:
    """KEY=value lines of a .env file (# comments, optional quotes, optional 'export')."""
    out = {}
    text = decode_utf8(Path(path).read_bytes(), lambda message: SettingsError(f"{path}: {message}"))
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _ENV_LINE.fullmatch(line)
        if not m:  # the line itself may hold a secret: name only its number
            raise SettingsError(f"{path} line {n}: expected KEY=value")
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[m.group(1)] = value
    return out


def load_env(env_file=None) -> dict:
    """os.environ over the .env file ($POSE_FACTORY_ENV_FILE, else .env beside the pack): a value
    set in the environment wins."""
    path = Path(env_file or os.environ.get("POSE_FACTORY_ENV_FILE") or DEFAULT_ENV_FILE)
    merged = read_env_file(path) if path.is_file() else {}
    merged.update(os.environ)
    return merged


def storage_env(settings: dict, env: dict) -> dict:
    """The environment a worker needs for the configured storage: the R2 variables for r2, the
    local root otherwise."""
    if settings["storage"]["backend"] == "r2":
        keep = ("CLOUDFLARE_R2_", "POSE_FACTORY_R2_", "POSE_FACTORY_S3_")
        return {k: v for k, v in env.items() if k.startswith(keep)}
    return {"POSE_FACTORY_STORAGE_ROOT": settings["storage"]["local_root"]}


def make_storage(settings: dict, env: dict | None = None):
    """The configured storage: LocalStorage at local_root, or R2 from the environment."""
    env = load_env() if env is None else env
    if settings["storage"]["backend"] == "r2":
        from .storage.s3 import S3Storage

        return S3Storage.from_env(env)
    from .storage import LocalStorage

    return LocalStorage(settings["storage"]["local_root"])
