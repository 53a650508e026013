"""A render leaves nothing in the temp folder (issue 8): not after a render, not after a failed
one, not after a cancelled one; and a worker starting up removes what a killed one left there.
Each test gives the renders a private temp folder (TMPDIR, inherited by the Blender child)."""
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from pose_factory import render
from pose_factory.storage import LocalStorage

pytestmark = pytest.mark.blender
SPEC = {"schema_version": "1.0", "kind": "pose_batch", "project": "scratch",
        "render": {"width": 96, "height": 96, "shaded_samples": 2},
        "cameras": {"type": "orbit", "views": 2}, "subjects": [{"type": "mannequin", "poses": ["a_pose", "waving"]}]}


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_nothing_left_after_a_render(private_tmp, tmp_path):
    manifest, rendered = render.render_batch(SPEC, LocalStorage(tmp_path / "store"))
    assert rendered and len(manifest["entries"]) == 4
    assert os.listdir(private_tmp) == []


def test_nothing_left_after_a_failed_render(private_tmp, tmp_path):
    # the render fails at its end: its depth folder is a file
    work = tmp_path / "work"
    (work / "files").mkdir(parents=True)
    (work / "files" / "depth").write_text("in the way")
    with pytest.raises(render.RenderError, match="exit 1"):
        render.run_blender(render.prepare(SPEC, None)[0], str(work))
    assert os.listdir(private_tmp) == []
    assert sorted(os.listdir(work)) == ["files", "spec.json"]  # no scratch left in the work folder
    # and through render_batch: its work folder goes too
    with pytest.raises(ValueError, match="stop here"):
        render.render_batch(SPEC, LocalStorage(tmp_path / "store"), force=True,
                            on_progress=lambda e: (_ for _ in ()).throw(ValueError("stop here"))
                            if e["state"] == "rendering" and e["done"] >= 1 else None)
    time.sleep(1.0)  # the child, whose stdout is gone, exits on its next line
    assert os.listdir(private_tmp) == []


def test_nothing_left_after_a_cancelled_render(private_tmp, tmp_path):
    store = LocalStorage(tmp_path / "store")

    async def cancel_once_rendering():
        started = asyncio.Event()
        task = asyncio.ensure_future(render.render_batch_async(
            SPEC, store, force=True, on_progress=lambda e: e["state"] == "rendering" and e["done"] >= 1 and started.set()))
        await asyncio.wait_for(started.wait(), 120)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_once_rendering())
    assert os.listdir(private_tmp) == []


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_worker_start_up_removes_a_killed_runs_leftovers(private_tmp):
    old = time.time() - 2 * render.LEFTOVER_AGE_S
    leftovers = [f"pose_factory_{_dead_pid()}_abc", "pose_factory_k3j_x9", "pf_exr_q1w2"]
    kept = [f"pose_factory_{os.getpid()}_live", "pf_exr_fresh", "someone_elses"]
    for name in leftovers + kept:
        (private_tmp / name / "files").mkdir(parents=True)
        (private_tmp / name / "files" / "data.exr").write_bytes(b"x" * 1000)
    for name in leftovers[1:] + ["someone_elses"]:
        os.utime(private_tmp / name, (old, old))
    worker = subprocess.Popen([sys.executable, "pod_worker/local_worker.py"], cwd=render.REPO_ROOT,
                              env=dict(os.environ, PYTHONPATH=str(render.REPO_ROOT)), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(worker.stdout.readline())
        assert ready["event"] == "ready"
    finally:
        worker.stdin.close()
        worker.wait(timeout=60)
    assert sorted(os.listdir(private_tmp)) == sorted(kept)
    assert "removed a killed render's leftover" in worker.stderr.read()
