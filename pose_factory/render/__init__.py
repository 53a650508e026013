"""Renders a JobSpec into a batch in storage: one Blender process per batch, in the worker
environment, then every file into storage and the manifest last."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from . import passes
from .. import imageio
from .. import manifest as manifest_mod
from .. import spec as spec_mod
from .. import storage as storage_mod

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
WORKER_VERSION = "0.1.0"


class RenderError(RuntimeError):
    pass


def worker_python() -> str:
    """The Python that has bpy: $POSE_FACTORY_WORKER_PYTHON, else this one if it can import bpy,
    else the pack's worker venv (scripts/setup_worker.sh), else its test venv (scripts/setup.sh)."""
    env = os.environ.get("POSE_FACTORY_WORKER_PYTHON")
    if env:
        return env
    if importlib.util.find_spec("bpy") is not None:
        return sys.executable
    for venv in (".venv-worker", ".venv"):
        python = REPO_ROOT / venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        if python.exists():
            return str(python)
    raise RenderError("no worker Python with bpy found: run scripts/setup_worker.sh, or set worker_python "
                      "in config/local.yaml to a CPython 3.11 that has bpy==5.0.1")


# What the Blender child may see of this process's environment: the system's own variables (paths,
# locale, temp dirs, the Windows basics), the GPU runtime's and Blender's. Never storage or RunPod
# credentials: the child only renders into a temp folder; this process uploads.
_CHILD_ENV_NAMES = frozenset((
    "PATH", "HOME", "USER", "USERNAME", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP",
    "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH", "VIRTUAL_ENV", "OMP_NUM_THREADS",
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "APPDATA", "LOCALAPPDATA",
    "PROGRAMDATA", "PROGRAMFILES", "PROGRAMFILES(X86)", "COMMONPROGRAMFILES", "NUMBER_OF_PROCESSORS",
    "PROCESSOR_ARCHITECTURE", "PROCESSOR_IDENTIFIER", "OS",
))
_CHILD_ENV_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "HIP_", "ROCR_", "HSA_", "GPU_", "OCIO", "BLENDER_",
                       "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONDONTWRITEBYTECODE")


WORK_PREFIX = "pose_factory_"  # a render's work folder in the temp folder: pose_factory_<pid>_…
LEFTOVER_PREFIXES = (WORK_PREFIX, "pf_exr_")  # pf_exr_*: Blender's scratch of renders before recipe 3
LEFTOVER_AGE_S = 3600  # a leftover that names no process is removed when untouched this long


def work_folder():
    """A render's work folder (a TemporaryDirectory) named after this process, so that a worker
    starting after this one was killed can tell it is a leftover (remove_leftovers). The Blender
    child keeps its scratch files inside it."""
    return tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}_")


def _owner_alive(path: str, pid: int) -> bool:
    import psutil  # the worker environment has it; only a worker clears leftovers

    try:
        return psutil.Process(pid).create_time() <= os.path.getmtime(path) + 1.0  # not a reused pid
    except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
        return False


def remove_leftovers(folder: str | None = None) -> list:
    """Removes from the temp folder what killed renders left there: work folders of processes
    that are gone, and folders that name no process (older versions' pose_factory_* and pf_exr_*)
    once untouched for LEFTOVER_AGE_S. A worker calls it at start-up. Returns the removed paths."""
    folder = folder or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        if not name.startswith(LEFTOVER_PREFIXES) or not os.path.isdir(path) or os.path.islink(path):
            continue
        m = re.match(re.escape(WORK_PREFIX) + r"(\d+)_", name)
        try:
            stale = (not _owner_alive(path, int(m.group(1))) if m
                     else time.time() - os.path.getmtime(path) > LEFTOVER_AGE_S)
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _child_env(tmp: str) -> dict:
    """The child's environment (only _CHILD_ENV_NAMES/_PREFIXES of ours), with tmp as its temp folder: Blender's session folder and the
    render's scratch go there, so the parent removes them even when it had to kill the child."""
    os.makedirs(tmp, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k.upper() in _CHILD_ENV_NAMES or k.upper().startswith(_CHILD_ENV_PREFIXES)}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env.update(TMPDIR=tmp, TEMP=tmp, TMP=tmp)
    return env


def _child_tmp(proc, tmp: str):
    proc.private_tmp = tmp
    return proc


def _remove_child_tmp(proc) -> None:
    shutil.rmtree(getattr(proc, "private_tmp", None) or "", ignore_errors=True)


async def end_child(proc) -> None:
    """Lets a render child (a standby a job did not use, or a finished one) exit, reaps it and
    removes its temp folder."""
    if proc.returncode is None and proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    await proc.wait()
    _remove_child_tmp(proc)


def _child_cmd(python: str | None, *args: str) -> list:
    return [python or worker_python(), "-m", "blender_scripts.render_batch", *args]


def _job_files(spec: dict, workdir: str) -> tuple[str, str]:
    """(spec path, out dir) of one render in workdir."""
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w") as fh:
        json.dump(spec, fh)
    return spec_path, os.path.join(workdir, "files")


def _on_line(line: str, tail: deque, on_progress) -> None:
    if line.startswith("@@progress "):
        if on_progress:
            on_progress(json.loads(line[len("@@progress "):]))
    else:
        tail.append(line.rstrip())


def _read_result(code: int, tail: deque, out: str) -> dict:
    if code != 0:
        raise RenderError(f"the Blender render process failed (exit {code}):\n" + "\n".join(tail))
    with open(os.path.join(out, "result.json")) as fh:
        result = json.load(fh)
    result["files_dir"] = out
    return result


def run_blender(spec: dict, workdir: str, on_progress=None, python: str | None = None, views=None) -> dict:
    """Runs blender_scripts.render_batch in a child process; returns its result.json.
    views: (start, stop) renders only those views (a shard)."""
    spec_path, out = _job_files(spec, workdir)
    cmd = _child_cmd(python, "--spec", spec_path, "--out", out, *(["--views", "%d:%d" % tuple(views)] if views else []))
    tail = deque(maxlen=40)  # what Blender said last, for the error message
    tmp = os.path.join(workdir, "tmp")
    try:
        with subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=_child_env(tmp), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            for line in proc.stdout:
                _on_line(line, tail, on_progress)
            code = proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _read_result(code, tail, out)


async def spawn_standby(python: str | None = None):
    """A render child started ahead of its job: it imports Blender and waits on stdin, so a warm
    worker's next render skips that start-up. Hand it to run_blender_async(standby=…), or to
    end_child if no job takes it. Its temp folder is a work folder of this process."""
    import asyncio

    tmp = tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}_standby_")
    return _child_tmp(await asyncio.create_subprocess_exec(
        *_child_cmd(python, "--standby"), cwd=str(REPO_ROOT), env=_child_env(tmp), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, limit=1 << 20), tmp)


async def run_blender_async(spec: dict, workdir: str, on_progress=None, python: str | None = None,
                            views=None, standby=None) -> dict:
    """run_blender for an event loop: when the awaiting task is cancelled the child is killed
    (and waited for) before CancelledError goes on, so no render outlives its job. standby: a
    process from spawn_standby to use instead of starting one (if it is still alive)."""
    import asyncio

    spec_path, out = _job_files(spec, workdir)
    proc = None
    if standby is not None and standby.returncode is None:
        try:
            standby.stdin.write((json.dumps({"spec": spec_path, "out": out, "views": views}) + "\n").encode())
            await standby.stdin.drain()
            standby.stdin.close()
            proc = standby
        except (BrokenPipeError, ConnectionResetError):  # it died waiting: start a fresh one
            pass
    if proc is None:
        if standby is not None:
            await end_child(standby)
        cmd = _child_cmd(python, "--spec", spec_path, "--out", out,
                         *(["--views", "%d:%d" % tuple(views)] if views else []))
        tmp = os.path.join(workdir, "tmp")
        proc = _child_tmp(await asyncio.create_subprocess_exec(*cmd, cwd=str(REPO_ROOT), env=_child_env(tmp),
                                                               stdout=asyncio.subprocess.PIPE,
                                                               stderr=asyncio.subprocess.STDOUT, limit=1 << 20), tmp)
    tail = deque(maxlen=40)
    try:
        async for raw in proc.stdout:
            _on_line(raw.decode("utf-8", "replace"), tail, on_progress)
        code = await proc.wait()
    except BaseException:  # cancelled (or a progress callback failed): the child must not live on
        if proc.returncode is None:
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    finally:
        _remove_child_tmp(proc)
    return _read_result(code, tail, out)


def prepare(raw_spec: dict, project: str | None):
    """(normalized spec, project, batch id)."""
    spec = spec_mod.normalize_spec(raw_spec)
    project = spec_mod.validate_project_name(project or spec["project"])
    spec["project"] = project
    return spec, project, spec_mod.batch_id(spec)


def blender_spec(spec: dict, storage, project: str, work: str) -> dict:
    """The spec the Blender child reads: with props, each one's mesh fetched from storage, checked
    and placed in the world as an .npz in the work folder (``prop_files``); else spec itself."""
    if not spec.get("props"):
        return spec
    from ..mesh import props

    return dict(spec, prop_files=props.prepare_files(spec, storage, project, os.path.join(work, "props")))


def _upload_files(project: str, bid: str, result: dict, storage, on_progress, stop=None) -> list:
    """Every rendered file into storage; returns the manifest entries. stop (a threading.Event)
    set aborts, so the batch stays without a manifest."""
    total = len(result["entries"])
    if on_progress:
        on_progress({"state": "uploading", "done": 0, "total": total})
    writer = storage_mod.BatchWriter(storage, project, bid)
    entries = []
    for i, e in enumerate(result["entries"]):
        if stop is not None and stop.is_set():
            raise RenderError("cancelled while uploading")
        files = {name: writer.add_file(key, os.path.join(result["files_dir"], key))
                 for name, key in e["files"].items()}
        entries.append({"view": e["view"], "frame": e["frame"], "files": files,
                        **({"camera_shift": e["camera_shift"]} if "camera_shift" in e else {})})
        if on_progress:
            on_progress({"state": "uploading", "done": i + 1, "total": total})
    return entries


SHARD_KEYS = ("blender_version", "cameras", "frames", "joints_3d", "depth_range", "timings")


def write_shard_depth(storage, project: str, bid: str, parts: list) -> list:
    """The 8-bit depth of a batch rendered in shards with one depth range for the batch: each
    shard measured its own range and kept its metric depth (passes.DEPTH_F32); here the ranges
    are merged and every image's 8-bit depth is written with it (the same pixels one worker
    writes for the whole batch), and the metric depth files are removed. Returns the parts
    with their depth files and the batch's range."""
    depth_range = _merged_depth_range(parts)
    near_far = (depth_range["near"], depth_range["far"]) if depth_range else (0.0, 1.0)
    writer = storage_mod.BatchWriter(storage, project, bid)
    out = []
    for p in parts:
        entries = []
        for e in p["entries"]:
            files = dict(e["files"])
            f32 = files.pop(passes.DEPTH_F32, None)
            if f32 is not None:
                key = writer.prefix + f32["key"]
                u8 = passes.depth_u8_from_f32_bytes(storage.get_bytes(key), *near_far)
                files["depth"] = writer.add_file(manifest_mod.image_key("depth", e["view"], e["frame"]),
                                                 imageio.encode_png(u8))
                storage.delete(key)
            entries.append(dict(e, files=files))
        out.append(dict(p, entries=entries, depth_range=depth_range))
    return out


def build_batch_manifest(spec: dict, project: str, bid: str, parts: list, timings: dict, cost: dict,
                         recipe_version: int = spec_mod.RECIPE_VERSION) -> dict:
    """The manifest of a batch from the renders of its views: one part for a whole batch, or one
    per shard (each {"views": [start, stop], "entries", and SHARD_KEYS}). The shards must cover
    every view once and agree on what they share (their depth ranges are merged, see
    write_shard_depth); entries come out frame-major, then view."""
    first = parts[0]
    n_views = len(first["cameras"])
    covered = sorted(v for p in parts for v in range(*p["views"]))
    if covered != list(range(n_views)):
        raise RenderError(f"shards cover views {covered}, the batch has views 0..{n_views - 1}")
    for p in parts[1:]:
        for key in ("cameras", "frames", "joints_3d", "blender_version"):
            if p[key] != first[key]:
                raise RenderError(f"shards disagree on {key}: views {first['views']} vs {p['views']}")
    entries = sorted((e for p in parts for e in p["entries"]), key=lambda e: (e["frame"], e["view"]))
    return manifest_mod.build_manifest(
        batch_id=bid, project=project, spec=spec, recipe_version=recipe_version,
        worker_version=WORKER_VERSION, blender_version=first["blender_version"],
        width=spec["render"]["width"], height=spec["render"]["height"], views=first["cameras"],
        frames=first["frames"], entries=entries, joints_3d=first["joints_3d"],
        depth_range=_merged_depth_range(parts), timings=timings, cost=cost)


def _merged_depth_range(parts: list) -> dict | None:
    merged = passes.merge_ranges((p["depth_range"]["near"], p["depth_range"]["far"]) if p["depth_range"] else None
                                 for p in parts)
    return {"near": merged[0], "far": merged[1]} if merged else None


def commit_batch(storage, manifest: dict) -> dict:
    """Checks every listed file is stored with its hash, then writes the manifest, last."""
    return storage_mod.BatchWriter(storage, manifest["project"], manifest["batch_id"]).commit(manifest)


def _shard_part(project: str, bid: str, result: dict, entries: list) -> dict:
    part = {k: result[k] for k in SHARD_KEYS}
    part["batch_id"], part["project"] = bid, project
    part["views"], part["entries"] = result.get("views") or [0, len(result["cameras"])], entries
    return part


def _upload(spec: dict, project: str, bid: str, result: dict, storage, on_progress, t0: float,
            stop=None, views=None, recipe_version: int = spec_mod.RECIPE_VERSION) -> dict:
    """Every file into storage, then the manifest last; a shard (views set) returns its part
    instead of a manifest, for the client to merge."""
    entries = _upload_files(project, bid, result, storage, on_progress, stop)
    part = _shard_part(project, bid, result, entries)
    if views is not None:
        return part
    timings = dict(result["timings"], wall=time.perf_counter() - t0)
    manifest = build_batch_manifest(spec, project, bid, [part], timings, {"estimate_usd": 0.0, "backend": "local"},
                                    recipe_version)
    if stop is not None and stop.is_set():
        raise RenderError("cancelled while uploading")
    commit_batch(storage, manifest)
    if on_progress:
        on_progress({"state": "completed", "done": len(entries), "total": len(entries)})
    return manifest


def done_meanwhile(storage, project: str, bid: str, force: bool, before):
    """Under the batch lock: the batch's manifest when it needs no render after all (complete,
    and for force, rendered afresh by another process while this one waited), else None. Checks
    the storage can be written before anything is rendered for it."""
    now = storage_mod.read_manifest(storage, project, bid)
    if now is not None and (not force or now != before):
        return now
    storage.check()
    return None


def render_batch(raw_spec: dict, storage, project: str | None = None, force: bool = False,
                 on_progress=None, python: str | None = None) -> tuple[dict, bool]:
    """Returns (manifest, rendered). An identical spec already in storage is not rendered
    again unless force is set. One render of a batch at a time on this machine: a second
    request waits for the first and shares its batch (rendered False)."""
    spec, project, bid = prepare(raw_spec, project)
    before = storage_mod.read_manifest(storage, project, bid)
    if before is not None and not force:
        return before, False
    with storage_mod.batch_lock(storage, project, bid):
        done = done_meanwhile(storage, project, bid, force, before)
        if done is not None:
            return done, False
        t0 = time.perf_counter()
        with work_folder() as work:
            result = run_blender(blender_spec(spec, storage, project, work), work, on_progress, python)
            return _upload(spec, project, bid, result, storage, on_progress, t0), True


async def render_batch_async(raw_spec: dict, storage, project: str | None = None, force: bool = False,
                             on_progress=None, python: str | None = None, views=None,
                             standby=None) -> tuple[dict, bool]:
    """render_batch for an event loop. Cancelling the task kills the Blender child; during the
    upload (run in a thread so the loop stays free) it stops before the manifest is written.
    views: (start, stop) renders one shard of the batch and returns its part (no manifest; see
    build_batch_manifest) instead of the manifest. standby: a process from spawn_standby.
    As render_batch, one render of a batch at a time on this machine; a waiter shares the batch."""
    import asyncio

    spec, project, bid = prepare(raw_spec, project)
    loop = asyncio.get_running_loop()
    if views is not None:  # a shard: its own views, no manifest; the client merges and commits
        await loop.run_in_executor(None, storage.check)
        return await _render_async(spec, project, bid, storage, on_progress, python, views, standby), True
    before = await loop.run_in_executor(None, storage_mod.read_manifest, storage, project, bid)
    if before is None or force:
        async with storage_mod.batch_lock_async(storage, project, bid):
            done = await loop.run_in_executor(None, done_meanwhile, storage, project, bid, force, before)
            if done is None:
                return await _render_async(spec, project, bid, storage, on_progress, python, views, standby), True
        before = done
    if standby is not None and standby.returncode is None:
        standby.stdin.close()  # not needed for this job: let it exit
    return before, False


async def _render_async(spec, project, bid, storage, on_progress, python, views, standby) -> dict:
    import asyncio
    import threading

    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    with work_folder() as work:
        child_spec = await loop.run_in_executor(None, blender_spec, spec, storage, project, work)
        result = await run_blender_async(child_spec, work, on_progress, python, views=views, standby=standby)
        stop = threading.Event()
        fut = loop.run_in_executor(None, _upload, spec, project, bid, result, storage, on_progress, t0, stop, views)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            stop.set()
            try:  # the thread reads files from work: let it stop before they are deleted
                await asyncio.shield(fut)
            except Exception:
                pass
            raise
