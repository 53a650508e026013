import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_blender_script(script: str, *args, timeout=600):
    """Runs a bpy script in its own process, as the worker does (bpy is not thread-safe and
    keeps global state), with the repository importable."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "blender" / script), *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session", autouse=True)
def pointer_dir(tmp_path_factory):
    """ComfyUI's side records its data root for the CLI in the user's config folder
    (pose_factory/pointer.py): in tests, in a temporary folder instead (also for the processes
    they start, which inherit the variable), never the real one."""
    path = tmp_path_factory.mktemp("pointers")
    old = os.environ.get("POSE_FACTORY_POINTER_DIR")
    os.environ["POSE_FACTORY_POINTER_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("POSE_FACTORY_POINTER_DIR", None)
    else:
        os.environ["POSE_FACTORY_POINTER_DIR"] = old


@pytest.fixture(scope="session")
def blender():
    return run_blender_script
