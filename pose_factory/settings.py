"""The pack's settings: non-secret keys from the config file, secrets from the environment or .env.

    settings = load_settings()            # config/local.yaml if present, else the defaults
    settings["runpod"]["max_shard_views"] # every key of config/local.example.yaml, validated
    env = load_env()                      # os.environ over the pack's git-ignored .env

The config file is YAML (``$POSE_FACTORY_CONFIG``, else ``config/local.yaml`` beside the pack);
a key left out takes its default, an unknown key or a wrong value is refused with the key named.
Relative paths are relative to the pack's folder. Secrets never come from here (DESIGN.md §4).
"""
from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path

from .budget import DEFAULT_MONTHLY_LIMIT_USD, DEFAULT_STARTUP_S, PRICES_PER_SECOND
from .spec import validate_project_name

PACK_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACK_ROOT / "config" / "local.yaml"
DEFAULT_ENV_FILE = PACK_ROOT / ".env"

DEFAULTS = {
    "project": "default",
    "storage": {"backend": "local", "local_root": "data/storage", "cache_root": "data/raw"},
    "worker_python": "",
    "client": "local",
    "runpod": {"gpu_class": "24gb", "idle_timeout_s": 5, "startup_s": DEFAULT_STARTUP_S, "max_shard_views": 8,
               "poll_interval_s": 2, "job_timeout_s": 1800, "speed_factor": 1.0,
               "url_base": "https://api.runpod.ai/v2"},
    "budget": {"monthly_gpu_limit_usd": DEFAULT_MONTHLY_LIMIT_USD, "ledger_path": "data/budget/ledger.sqlite"},
    "limits": {"max_images": 8192, "max_megapixels": 8192, "max_render_s": 14400},
}
SECRET_NAMES = ("CLOUDFLARE_R2_ACCESS_KEY_ID", "CLOUDFLARE_R2_SECRET_ACCESS_KEY", "RUNPOD_API_KEY")
PATH_KEYS = (("storage", "local_root"), ("storage", "cache_root"), ("budget", "ledger_path"))


class SettingsError(ValueError):
    """A config key or .env line is wrong; the message names it and what is allowed."""


def _number(value, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise SettingsError(f"config {key}: got {value!r}, allowed: a number from {lo:g} to {hi:g}")
    return value


def _choice(value, key: str, allowed) -> str:
    if value not in allowed:
        raise SettingsError(f"config {key}: got {value!r}, allowed: {', '.join(allowed)}")
    return value


def _merge(defaults: dict, given, where: str) -> dict:
    if not isinstance(given, dict):
        raise SettingsError(f"config {where or 'file'}: expected a mapping of keys, got {type(given).__name__}")
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in defaults:
            raise SettingsError(f"config {name}: unknown key, allowed: {', '.join(defaults)}")
        out[key] = _merge(defaults[key], value, name) if isinstance(defaults[key], dict) else value
    return out


def validate_settings(s: dict) -> dict:
    try:
        validate_project_name(s["project"])
    except ValueError as e:
        raise SettingsError(f"config project: {e}") from None
    _choice(s["storage"]["backend"], "storage.backend", ("local", "r2"))
    _choice(s["client"], "client", ("local", "runpod"))
    for section, key in PATH_KEYS:
        if not isinstance(s[section][key], str) or not s[section][key]:
            raise SettingsError(f"config {section}.{key}: got {s[section][key]!r}, allowed: a folder or file path")
    if not isinstance(s["worker_python"], str):
        raise SettingsError(f"config worker_python: got {s['worker_python']!r}, allowed: a path or empty")
    rp = s["runpod"]
    _choice(rp["gpu_class"], "runpod.gpu_class", tuple(PRICES_PER_SECOND))
    _number(rp["idle_timeout_s"], "runpod.idle_timeout_s", 0, 3600)
    _number(rp["startup_s"], "runpod.startup_s", 0, 3600)
    _number(rp["poll_interval_s"], "runpod.poll_interval_s", 0.05, 60)
    _number(rp["job_timeout_s"], "runpod.job_timeout_s", 1, 86400)
    _number(rp["speed_factor"], "runpod.speed_factor", 0.001, 1000)
    if isinstance(rp["max_shard_views"], bool) or not isinstance(rp["max_shard_views"], int) \
            or not 1 <= rp["max_shard_views"] <= 64:
        raise SettingsError(f"config runpod.max_shard_views: got {rp['max_shard_views']!r}, "
                            "allowed: an integer from 1 to 64")
    if not isinstance(rp["url_base"], str) or not re.match(r"https?://", rp["url_base"]):
        raise SettingsError(f"config runpod.url_base: got {rp['url_base']!r}, allowed: an http(s) URL")
    _number(s["budget"]["monthly_gpu_limit_usd"], "budget.monthly_gpu_limit_usd", 0, 1e6)
    for key in ("max_images", "max_megapixels", "max_render_s"):
        _number(s["limits"][key], f"limits.{key}", 1, 1e9)
    return s


def load_settings(path=None, overrides: dict | None = None) -> dict:
    """Defaults, then the config file (when it exists), then overrides; validated. Paths made
    absolute against the pack's folder."""
    path = Path(path or os.environ.get("POSE_FACTORY_CONFIG") or DEFAULT_CONFIG)
    s = copy.deepcopy(DEFAULTS)
    if path.is_file():
        import yaml

        try:
            given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise SettingsError(f"config file {path}: not valid YAML ({e})") from None
        s = _merge(s, given, "")
    elif path != DEFAULT_CONFIG:
        raise SettingsError(f"config file {path}: not found")
    if overrides:
        s = _merge(s, overrides, "")
    validate_settings(s)
    for section, key in PATH_KEYS:
        s[section][key] = str((PACK_ROOT / s[section][key]).resolve())
    return s


_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def read_env_file(path) -> dict:
    """KEY=value lines of a .env file (# comments, optional quotes, optional 'export')."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
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
        from .s3 import S3Storage

        return S3Storage.from_env(env)
    from .storage import LocalStorage

    return LocalStorage(settings["storage"]["local_root"])
