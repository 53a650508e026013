import json
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


def _set_env_for_session(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    return lambda: os.environ.pop(name, None) if old is None else os.environ.__setitem__(name, old)


@pytest.fixture(scope="session", autouse=True)
def pointer_dir(tmp_path_factory):
    """ComfyUI's side records its data root for the CLI in the user's config folder
    (pose_factory/pointer.py): in tests, in a temporary folder instead (also for the processes
    they start, which inherit the variable), never the real one. Session-wide, as is the data root
    below: the job client keeps one warm worker per settings and environment."""
    path = tmp_path_factory.mktemp("pointers")
    restore = _set_env_for_session("POSE_FACTORY_POINTER_DIR", str(path))
    yield path
    restore()


@pytest.fixture(scope="session", autouse=True)
def data_root_outside_the_checkout(tmp_path_factory):
    """Without a config the data root of a checkout is its own data/ (settings.py): a test that
    renders or records without naming one (the CLI's ledger and index, say) would leave a user's
    data there. So the tests run with a config whose data_root is a temporary folder; a test about
    the defaults removes the variable itself, and one that lists what the data root holds (a
    project dropdown fills from the local index) gives itself an empty one (fresh_data_root)."""
    folder = tmp_path_factory.mktemp("data_root")
    config = folder / "config.yaml"
    config.write_text(f"data_root: {json.dumps(str(folder / 'data'))}\n", encoding="utf-8")
    restore = _set_env_for_session("POSE_FACTORY_CONFIG", str(config))
    yield folder / "data"
    restore()


@pytest.fixture
def fresh_data_root(tmp_path, monkeypatch):
    """An empty data root (and pointer folder) of this test's own."""
    config = tmp_path / "fresh-config.yaml"
    config.write_text(f"data_root: {json.dumps(str(tmp_path / 'fresh-data'))}\n", encoding="utf-8")
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(config))
    monkeypatch.setenv("POSE_FACTORY_POINTER_DIR", str(tmp_path / "fresh-pointers"))
    return tmp_path / "fresh-data"


@pytest.fixture(scope="session")
def blender():
    return run_blender_script
