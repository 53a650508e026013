"""The worker process's children: which Python has bpy, what a child may see of our environment,
the work folders renders keep their files in (and what killed ones left behind), and the Blender
render child itself, started per job or ahead of it (a standby) and read for its progress.

Every room that runs a worker-environment child uses this: the pose renderer (render), the mesh
exporter (mesh/postprocess), the BVH reader (motion/clip). Standard library only at import
(asyncio where a child is awaited, psutil where leftovers are cleared: the worker has both).
"""
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

REPO_ROOT = Path(__file__).resolve().parent.parent


class RenderError(RuntimeError):
    """A worker-environment child (Blender) could not be started or failed; the message says why."""


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


def child_env(tmp: str) -> dict:
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
    removes its temp folder; cancelled meanwhile (the worker closing), it kills the child first."""
    if proc.returncode is None and proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    try:
        await proc.wait()
    finally:
        if proc.returncode is None:  # cancelled while it exits: it must not outlive its folder
            proc.kill()
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
        with subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=child_env(tmp), stdout=subprocess.PIPE,
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
    try:
        proc = await asyncio.create_subprocess_exec(
            *_child_cmd(python, "--standby"), cwd=str(REPO_ROOT), env=child_env(tmp), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, limit=1 << 20)
    except BaseException:  # no worker Python, or cancelled while starting (asyncio kills and reaps the child)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _child_tmp(proc, tmp)


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
        proc = _child_tmp(await asyncio.create_subprocess_exec(*cmd, cwd=str(REPO_ROOT), env=child_env(tmp),
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
