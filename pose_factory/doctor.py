"""Checks the set-up and says what to fix (``python -m pose_factory doctor``).

Each check is {"check", "ok", "detail", "fix"}; a secret's value is never shown, only its name.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from . import pointer, settings as settings_mod

R2_VARS = ("CLOUDFLARE_R2_ACCESS_KEY_ID", "CLOUDFLARE_R2_SECRET_ACCESS_KEY", "POSE_FACTORY_R2_BUCKET")
R2_ENDPOINT_VARS = ("CLOUDFLARE_R2_ACCOUNT_ID", "POSE_FACTORY_S3_ENDPOINT_URL")
RUNPOD_VARS = ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID")
PROBE_PREFIX = "doctor/"
_WORKER_PROBE = ("import json, sys\nout = {'python': sys.version.split()[0]}\n"
                 "try:\n import bpy; out['blender'] = bpy.app.version_string\nexcept Exception as e: out['bpy_error'] = repr(e)\n"
                 "try:\n import mediapipe; out['mediapipe'] = mediapipe.__version__\n"
                 "except Exception as e: out['mediapipe_error'] = repr(e)\nprint(json.dumps(out))\n")


def _check(name: str, ok: bool, detail: str, fix: str = "") -> dict:
    return {"check": name, "ok": bool(ok), "detail": detail, "fix": "" if ok else fix}


def run_checks(config_path=None, env_file=None, worker: bool = True) -> list[dict]:
    out = []
    try:
        settings = settings_mod.load_settings(config_path)
        out.append(_check("config", True, f"readable ({config_path or 'config/local.yaml or the defaults'}); "
                                          f"storage {settings['storage']['backend']}, client {settings['client']}"))
    except (settings_mod.SettingsError, OSError) as e:
        out.append(_check("config", False, str(e), "edit config/local.yaml (config/local.example.yaml shows every "
                                                   "key and what it allows)"))
        settings = None
    try:
        env = settings_mod.load_env(env_file)
    except (settings_mod.SettingsError, OSError) as e:
        out.append(_check(".env", False, str(e), "fix the .env file: one KEY=value per line"))
        env = {}
    uses_r2 = (settings or {}).get("storage", {}).get("backend") == "r2" or bool(env.get("POSE_FACTORY_R2_BUCKET"))
    uses_runpod = (settings or {}).get("client") == "runpod" or bool(env.get("RUNPOD_ENDPOINT_ID"))
    out += _credentials(env, uses_r2, uses_runpod)
    if settings is not None:
        out.insert(1, _data_root(settings, config_path))
        out.append(_storage(settings, env))
        if worker:
            out += _worker(settings)
        if uses_runpod and all(env.get(n) for n in RUNPOD_VARS):
            out.append(_runpod(settings, env))
    return out


def _data_root(settings: dict, config_path=None) -> dict:
    """Which data root this command uses and why (issue 21.4); a failure when ComfyUI records
    another one for this pack (they would see different data), or when it lies inside a pack that
    lives in ComfyUI (ComfyUI-Manager deletes the pack's folder on update)."""
    root, why = Path(settings["data_root"]), settings["data_root_from"]
    detail = f"{root} (from {why})" + ("" if root.exists() else "; not made yet (nothing rendered or pulled)")
    recorded = pointer.read(settings_mod.PACK_ROOT)
    if recorded is not None and Path(recorded["data_root"]) != root:
        return _check("data root", False, f"{detail}; but ComfyUI uses {recorded['data_root']} for this pack "
                                          f"(its pointer {recorded['path']}, written {recorded.get('written_at')}): "
                                          "the two see different batches",
                      "use the config ComfyUI reads (" + (recorded.get("config") or "config/local.yaml, or none")
                      + "): drop --config / POSE_FACTORY_CONFIG here, or set data_root to one folder in both")
    tree = settings_mod.comfyui_tree()
    if tree is not None and root.is_relative_to(settings_mod.PACK_ROOT):
        return _check("data root", False, f"{detail}: inside the pack's folder, which ComfyUI-Manager deletes and "
                                          "re-clones on update",
                      f"set data_root outside the pack (ComfyUI's default is {tree / 'output' / 'pose_factory'})")
    if recorded is not None and "pointer" not in why:
        detail += f"; ComfyUI uses the same (pointer {recorded['path']})"
    if recorded is not None:
        mine = Path(config_path or os.environ.get("POSE_FACTORY_CONFIG") or settings_mod.DEFAULT_CONFIG).resolve()
        theirs = recorded.get("config")
        if (str(mine) if mine.is_file() else None) != theirs:
            detail += (f"; note: ComfyUI read {'the config ' + theirs if theirs else 'no config file'}, this command "
                       f"{'reads ' + str(mine) if mine.is_file() else 'none'} (storage and other settings may differ)")
    return _check("data root", True, detail)


def _credentials(env: dict, uses_r2: bool, uses_runpod: bool) -> list[dict]:
    out = []
    fix = "set {} in the environment or in the pack's .env file (never in config or a node widget)"
    if uses_r2:
        for name in R2_VARS:
            out.append(_check(f"credential {name}", env.get(name), "set" if env.get(name) else "missing",
                              fix.format(name)))
        have = [n for n in R2_ENDPOINT_VARS if env.get(n)]
        out.append(_check("credential CLOUDFLARE_R2_ACCOUNT_ID", have, f"set ({have[0]})" if have else "missing",
                          fix.format("CLOUDFLARE_R2_ACCOUNT_ID (or POSE_FACTORY_S3_ENDPOINT_URL for another S3 "
                                     "store)")))
    if uses_runpod:
        for name in RUNPOD_VARS:
            out.append(_check(f"credential {name}", env.get(name), "set" if env.get(name) else "missing",
                              fix.format(name)))
    if not out:
        out.append(_check("credentials", True, "none needed (local storage, local worker)"))
    return out


def _storage(settings: dict, env: dict) -> dict:
    """Reachable (list), writable (put, read back, delete a probe object)."""
    backend = settings["storage"]["backend"]
    if backend == "r2":
        from .storage.s3 import S3Storage

        bucket = env.get("POSE_FACTORY_R2_BUCKET") or "?"
        where = f"bucket {bucket!r}"
        try:
            storage = S3Storage.from_env(env, max_attempts=1)
        except Exception as e:  # noqa: BLE001  (missing credentials: named by the checks above)
            return _check("storage", False, f"{where}: not checked ({e})", "set the missing credentials first")
        where += f" at {storage.endpoint_url}"
    else:
        from .storage import LocalStorage

        where = f"folder {settings['storage']['local_root']}"
        try:
            storage = LocalStorage(settings["storage"]["local_root"])
        except OSError as e:
            return _check("storage", False, f"{where}: {e}", "make the folder writable or set storage.local_root")
    key = f"{PROBE_PREFIX}probe-{uuid.uuid4().hex[:12]}.txt"
    try:
        storage.list("projects/")
    except Exception as e:  # noqa: BLE001
        return _check("storage", False, f"{where} unreachable: {e}",
                      "check the bucket name (POSE_FACTORY_R2_BUCKET), the account id or endpoint URL, and the "
                      "network; the bucket must exist")
    try:
        storage.put_bytes(key, b"pose_factory doctor probe")
        ok = storage.get_bytes(key) == b"pose_factory doctor probe"
        storage.delete(key)
    except Exception as e:  # noqa: BLE001
        return _check("storage", False, f"{where} reachable but not writable: {e}",
                      "give the R2 API token Object Read & Write on this bucket")
    return _check("storage", ok, f"{where} reachable and writable", "the probe object read back differently")


def _worker(settings: dict) -> list[dict]:
    from .render import RenderError, worker_python

    try:
        python = settings["worker_python"] or worker_python()
    except RenderError as e:
        return [_check("worker python", False, str(e), "run scripts/setup_worker.sh or set worker_python")]
    try:
        proc = subprocess.run([python, "-c", _WORKER_PROBE], capture_output=True, text=True, timeout=300)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return [_check("worker python", False, f"{python!r} cannot be run: {e}",
                       "set worker_python in config/local.yaml to a CPython 3.11 (scripts/setup_worker.sh makes one)")]
    out = [_check("worker python", got["python"].startswith("3.11."), f"{python} (Python {got['python']})",
                  "the worker needs CPython 3.11 (bpy 5.0.1 requires it)")]
    out.append(_check("blender (bpy)", "blender" in got and got["blender"].startswith("5.0"),
                      f"Blender {got['blender']}" if "blender" in got else f"bpy not importable: {got.get('bpy_error')}",
                      "pip install bpy==5.0.1 into the worker Python (scripts/setup_worker.sh)"))
    out.append(_check("mediapipe", "mediapipe" in got,
                      f"MediaPipe {got['mediapipe']}" if "mediapipe" in got
                      else f"not importable: {got.get('mediapipe_error')}",
                      "pip install mediapipe==0.10.21 into the worker Python (scripts/setup_worker.sh)"))
    return out


def _runpod(settings: dict, env: dict) -> dict:
    import requests

    url = (env.get("POSE_FACTORY_RUNPOD_URL") or settings["runpod"]["url_base"]).rstrip("/")
    url = f"{url}/{env['RUNPOD_ENDPOINT_ID']}/health"
    fix = "check RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY, and that the endpoint exists in the RunPod console"
    try:
        r = requests.get(url, headers={"Authorization": f"Bearer {env['RUNPOD_API_KEY']}"}, timeout=15)
    except requests.RequestException as e:
        return _check("runpod endpoint", False, f"{url} unreachable ({type(e).__name__})", fix)
    if r.status_code != 200:
        return _check("runpod endpoint", False, f"{url}: HTTP {r.status_code}", fix)
    try:
        workers = r.json().get("workers", {})
    except ValueError:
        return _check("runpod endpoint", False, f"{url}: not a health answer", fix)
    return _check("runpod endpoint", True, f"healthy; workers {json.dumps(workers, sort_keys=True)}")
