"""Renders a JobSpec into a batch in storage: one Blender process per batch, in the worker
environment, then every file into storage and the manifest last."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from . import manifest as manifest_mod
from . import spec as spec_mod
from . import storage as storage_mod

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_VERSION = "0.1.0"


class RenderError(RuntimeError):
    pass


def worker_python() -> str:
    """The Python that has bpy: $POSE_FACTORY_WORKER_PYTHON, else this one if it can import bpy,
    else the project's venv."""
    env = os.environ.get("POSE_FACTORY_WORKER_PYTHON")
    if env:
        return env
    if importlib.util.find_spec("bpy") is not None:
        return sys.executable
    venv = REPO_ROOT / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if venv.exists():
        return str(venv)
    raise RenderError("no worker Python with bpy found: run scripts/setup.sh, or set "
                      "POSE_FACTORY_WORKER_PYTHON to a CPython 3.11 that has bpy==5.0.1")


def _blender_command(spec: dict, workdir: str, python: str | None):
    """(cmd, env, out dir) for one render child; the spec goes to workdir/spec.json."""
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w") as fh:
        json.dump(spec, fh)
    out = os.path.join(workdir, "files")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [python or worker_python(), "-m", "blender_scripts.render_batch", "--spec", spec_path, "--out", out]
    return cmd, env, out


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


def run_blender(spec: dict, workdir: str, on_progress=None, python: str | None = None) -> dict:
    """Runs blender_scripts.render_batch in a child process; returns its result.json."""
    cmd, env, out = _blender_command(spec, workdir, python)
    tail = deque(maxlen=40)  # what Blender said last, for the error message
    with subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            _on_line(line, tail, on_progress)
        code = proc.wait()
    return _read_result(code, tail, out)


async def run_blender_async(spec: dict, workdir: str, on_progress=None, python: str | None = None) -> dict:
    """run_blender for an event loop: when the awaiting task is cancelled the child is killed
    (and waited for) before CancelledError goes on, so no render outlives its job."""
    import asyncio

    cmd, env, out = _blender_command(spec, workdir, python)
    tail = deque(maxlen=40)
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=str(REPO_ROOT), env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, limit=1 << 20)
    try:
        async for raw in proc.stdout:
            _on_line(raw.decode("utf-8", "replace"), tail, on_progress)
        code = await proc.wait()
    except BaseException:  # cancelled (or a progress callback failed): the child must not live on
        if proc.returncode is None:
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    return _read_result(code, tail, out)


def _prepare(raw_spec: dict, project: str | None):
    """(normalized spec, project, batch id)."""
    spec = spec_mod.normalize_spec(raw_spec)
    project = spec_mod.validate_project_name(project or spec["project"])
    spec["project"] = project
    return spec, project, spec_mod.batch_id(spec)


def _upload(spec: dict, project: str, bid: str, result: dict, storage, on_progress, t0: float,
            stop=None) -> dict:
    """Every file into storage, then the manifest last. stop (a threading.Event) set before the
    manifest is written aborts the batch, which then stays incomplete and unread."""
    if on_progress:
        on_progress({"state": "uploading", "done": 0, "total": len(result["entries"])})
    writer = storage_mod.BatchWriter(storage, project, bid)
    entries = []
    for i, e in enumerate(result["entries"]):
        if stop is not None and stop.is_set():
            raise RenderError("cancelled while uploading")
        files = {name: writer.add_file(key, os.path.join(result["files_dir"], key))
                 for name, key in e["files"].items()}
        entries.append({"view": e["view"], "frame": e["frame"], "files": files})
        if on_progress:
            on_progress({"state": "uploading", "done": i + 1, "total": len(result["entries"])})
    timings = dict(result["timings"], wall=time.perf_counter() - t0)
    manifest = manifest_mod.build_manifest(
        batch_id=bid, project=project, spec=spec, recipe_version=spec_mod.RECIPE_VERSION,
        worker_version=WORKER_VERSION, blender_version=result["blender_version"],
        width=spec["render"]["width"], height=spec["render"]["height"],
        views=result["cameras"], frames=result["frames"], entries=entries,
        joints_3d=result["joints_3d"], depth_range=result["depth_range"], timings=timings,
        cost={"estimate_usd": 0.0, "backend": "local"})
    if stop is not None and stop.is_set():
        raise RenderError("cancelled while uploading")
    writer.commit(manifest)
    if on_progress:
        on_progress({"state": "completed", "done": len(entries), "total": len(entries)})
    return manifest


def render_batch(raw_spec: dict, storage, project: str | None = None, force: bool = False,
                 on_progress=None, python: str | None = None) -> tuple[dict, bool]:
    """Returns (manifest, rendered). An identical spec already in storage is not rendered
    again unless force is set."""
    spec, project, bid = _prepare(raw_spec, project)
    if not force:
        existing = storage_mod.read_manifest(storage, project, bid)
        if existing is not None:
            return existing, False
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pose_factory_") as work:
        result = run_blender(spec, work, on_progress, python)
        return _upload(spec, project, bid, result, storage, on_progress, t0), True


async def render_batch_async(raw_spec: dict, storage, project: str | None = None, force: bool = False,
                             on_progress=None, python: str | None = None) -> tuple[dict, bool]:
    """render_batch for an event loop. Cancelling the task kills the Blender child; during the
    upload (run in a thread so the loop stays free) it stops before the manifest is written."""
    import asyncio
    import threading

    spec, project, bid = _prepare(raw_spec, project)
    loop = asyncio.get_running_loop()
    if not force:
        existing = await loop.run_in_executor(None, storage_mod.read_manifest, storage, project, bid)
        if existing is not None:
            return existing, False
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pose_factory_") as work:
        result = await run_blender_async(spec, work, on_progress, python)
        stop = threading.Event()
        fut = loop.run_in_executor(None, _upload, spec, project, bid, result, storage, on_progress, t0, stop)
        try:
            return await asyncio.shield(fut), True
        except asyncio.CancelledError:
            stop.set()
            try:  # the thread reads files from work: let it stop before they are deleted
                await asyncio.shield(fut)
            except Exception:
                pass
            raise
