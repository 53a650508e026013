"""The RunPod worker: the real handler under the real runpod SDK (DESIGN.md §6), run with
--test_input / test_input.json and through the SDK's local test server, plus cancellation of
the async handler mid-render. Loopback only: every RUNPOD_* variable is removed, so the SDK runs
its local mode and never calls out."""
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pose_factory import storage as storage_mod

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "pod_worker" / "handler.py"
pytestmark = pytest.mark.blender


def small_spec(poses=("a_pose", "walk_left_step"), views=2, size=128, **extra):
    return dict({"schema_version": "1.0", "kind": "pose_batch",
                 "render": {"width": size, "height": size, "shaded_samples": 4},
                 "cameras": {"type": "orbit", "views": views, "elevation": 5},
                 "subjects": [{"type": "mannequin", "poses": list(poses)}]}, **extra)


def worker_env(store, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RUNPOD_", "CLOUDFLARE_R2_", "POSE_FACTORY_R2_", "POSE_FACTORY_S3_"))
           and k not in ("PROJECT_NAME", "POSE_FACTORY_PRICE_PER_S")}
    env.update(PYTHONPATH=str(ROOT), POSE_FACTORY_STORAGE_ROOT=str(store), RUNPOD_LOG_LEVEL="INFO", **extra)
    return env


def run_handler(store, *args, cwd, timeout=300, **env):
    return subprocess.run([sys.executable, str(HANDLER), *args], cwd=cwd, env=worker_env(store, **env),
                          capture_output=True, text=True, timeout=timeout)


def job_result(out: str) -> dict:
    """The 'Job result: {...}' line the SDK logs (a Python repr of the result)."""
    import ast

    line = next(ln for ln in out.splitlines() if "Job result:" in ln)
    return ast.literal_eval(line.split("Job result:", 1)[1].strip())


def test_test_input_json_renders_a_batch_in_storage(tmp_path):
    from pose_factory.storage import projects

    # the user created the project on their machine before any worker ran: used unchanged
    projects.create(storage_mod.LocalStorage(tmp_path), "smoke", "Smoke Test")
    made = (tmp_path / "projects" / "smoke" / "project.json").read_bytes()
    # pod_worker/test_input.json, read by the SDK from the current directory
    proc = run_handler(tmp_path, cwd=ROOT / "pod_worker")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    res = job_result(out)["output"]
    assert res["batch_id"] in out and res["rendered"] is True and res["project"] == "smoke"
    assert res["entries"] == 4 and res["images"] > 4  # 2 poses x 2 views, several passes each
    manifest = json.loads((tmp_path / res["manifest_key"]).read_text())
    assert manifest["batch_id"] == res["batch_id"] and len(manifest["entries"]) == 4
    for e in manifest["entries"]:
        for f in e["files"].values():
            path = tmp_path / storage_mod.batch_prefix("smoke", res["batch_id"]) / f["key"]
            assert path.stat().st_size == f["size"]
    assert res["cost"]["backend"] == "local" and "handler" in res["timings"]
    assert (tmp_path / "projects" / "smoke" / "project.json").read_bytes() == made


def test_test_input_arg_uses_project_name_and_skips_existing(tmp_path):
    job = json.dumps({"input": {"spec": small_spec(poses=["standing"], views=1)}})
    first = run_handler(tmp_path, "--test_input", job, cwd=tmp_path, PROJECT_NAME="from-env")
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    res = job_result(first.stdout + first.stderr)["output"]
    assert res["project"] == "from-env" and res["rendered"] is True
    assert res["manifest_key"].startswith("projects/from-env/batches/")
    assert (tmp_path / res["manifest_key"]).is_file()
    # the job created its project (PROJECT_NAME's), which did not exist before
    assert json.loads((tmp_path / "projects" / "from-env" / "project.json").read_text())["display_name"] == "from-env"
    again = run_handler(tmp_path, "--test_input", job, cwd=tmp_path, PROJECT_NAME="from-env")
    res2 = job_result(again.stdout + again.stderr)["output"]
    assert res2["batch_id"] == res["batch_id"] and res2["rendered"] is False  # same spec, no render


@pytest.mark.parametrize("job_input, field", [
    ({"spec": small_spec(cameras={"type": "orbit", "views": 0})}, "input.spec.cameras.views"),
    ({"spec": small_spec(), "project": "Bad Name"}, "input.project"),
    ({"spec": small_spec(), "force": "yes"}, "input.force"),
    ({"spec": small_spec(kind="teleport")}, "input.spec.kind"),
    ({"specs": {}}, "input.specs"),
    ({"project": "x"}, "input.spec"),  # ({} is a posture request: tests/test_extract.py)
])
def test_bad_input_is_an_error_naming_the_field(tmp_path, job_input, field):
    proc = run_handler(tmp_path, "--test_input", json.dumps({"input": job_input}), cwd=tmp_path, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    err = next(ln for ln in out.splitlines() if "failed with error:" in ln)
    assert f"error: {field}" in err and "Traceback" not in out
    assert not list(tmp_path.rglob("manifest.json"))


def test_bad_project_name_env_is_reported(tmp_path):
    job = json.dumps({"input": {"spec": small_spec()}})
    proc = run_handler(tmp_path, "--test_input", job, cwd=tmp_path, timeout=120, PROJECT_NAME="no/slash")
    assert proc.returncode == 1 and "error: PROJECT_NAME" in proc.stdout + proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=300):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def test_sdk_local_server_runsync(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HANDLER), "--rp_serve_api", "--rp_api_host", "127.0.0.1",
                               "--rp_api_port", str(port)], cwd=tmp_path, env=worker_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stdout.read()[-3000:]
                time.sleep(0.2)
        ok = post(f"http://127.0.0.1:{port}/runsync", {"input": {"spec": small_spec(views=1), "project": "api"}})
        assert ok["status"] == "COMPLETED", ok
        assert (tmp_path / ok["output"]["manifest_key"]).is_file()
        assert ok["output"]["batch_id"] in ok["output"]["manifest_key"]
        bad = post(f"http://127.0.0.1:{port}/runsync", {"input": {"spec": small_spec(), "force": 1}})
        assert bad["status"] == "FAILED" and bad["error"].startswith("input.force")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cancel_kills_blender_child_and_writes_no_manifest(tmp_path, monkeypatch):
    psutil = pytest.importorskip("psutil")
    from pod_worker import handler as handler_mod

    sent = []
    monkeypatch.setattr(handler_mod, "progress_update", lambda job, p: sent.append(p))  # observe, no HTTP
    monkeypatch.setenv("RUNPOD_WEBHOOK_POST_OUTPUT", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("POSE_FACTORY_STORAGE_ROOT", str(tmp_path))
    monkeypatch.delenv("POSE_FACTORY_R2_BUCKET", raising=False)
    poses = ["a_pose", "walk_left_step", "standing", "waving"] * 4
    job = {"id": "cancel-me", "input": {"spec": small_spec(poses=poses, views=8, size=256), "project": "c"}}

    def blender_children():
        found = []
        for p in psutil.Process().children(recursive=True):
            try:  # other tests' children may be zombies or gone: skip them
                if "blender_scripts.render_batch" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:
                pass
        return found

    async def scenario():
        task = asyncio.create_task(handler_mod.handler(job))
        deadline = time.time() + 120
        while not any(p.get("state") == "rendering" for p in sent):  # the child is rendering now
            assert not task.done() and time.time() < deadline, (task.done() and task.result(), sent)
            await asyncio.sleep(0.05)
        children = blender_children()
        assert len(children) == 1
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # killed, not waited out: the whole render (128 images) takes several times longer
        assert time.monotonic() - t0 < 3
        return children[0]

    child = asyncio.run(scenario())
    assert not psutil.pid_exists(child.pid)  # killed and reaped
    assert not blender_children()
    assert not list(tmp_path.rglob("manifest.json"))
    assert [p["state"] for p in sent][0] == "queued" and sent[-1]["state"] == "cancelled"
    assert not any(p["state"] in ("uploading", "completed") for p in sent)


def test_storage_from_env(tmp_path):
    from pod_worker import storage_env

    st = storage_env.storage_from_env({"POSE_FACTORY_STORAGE_ROOT": str(tmp_path / "s")})
    assert isinstance(st, storage_mod.LocalStorage) and st.root == (tmp_path / "s").resolve()
    # a half-set R2 is an error naming what is missing, never a silent local fallback
    with pytest.raises(storage_mod.StorageError, match="CLOUDFLARE_R2_SECRET_ACCESS_KEY"):
        storage_env.storage_from_env({"POSE_FACTORY_R2_BUCKET": "b", "CLOUDFLARE_R2_ACCESS_KEY_ID": "k",
                                      "CLOUDFLARE_R2_ACCOUNT_ID": "acc", "POSE_FACTORY_STORAGE_ROOT": str(tmp_path)})


def test_half_configured_r2_is_an_error_from_the_worker(tmp_path):
    job = json.dumps({"input": {"spec": small_spec()}})
    proc = run_handler(tmp_path, "--test_input", job, cwd=tmp_path, timeout=120, POSE_FACTORY_R2_BUCKET="b")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "error: worker storage:" in out and "CLOUDFLARE_R2_ACCESS_KEY_ID" in out


def test_cancel_during_upload_writes_no_manifest(tmp_path):
    from pose_factory import render

    store = storage_mod.LocalStorage(tmp_path)

    async def scenario():
        loop = asyncio.get_running_loop()

        def on_progress(p):  # runs in the upload thread: cancel after the first entry is stored
            if p["state"] == "uploading" and p["done"] == 1:
                loop.call_soon_threadsafe(task.cancel)
                time.sleep(0.5)  # let the cancel land before the next entry

        task = asyncio.create_task(render.render_batch_async(small_spec(views=2), store, project="u",
                                                             on_progress=on_progress))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert list(tmp_path.rglob("*.png"))  # the upload had begun
    assert not list(tmp_path.rglob("manifest.json"))
    assert storage_mod.list_batches(store, "u") == []


def test_test_input_writes_to_r2_when_configured(tmp_path):
    # R2 through the S3 protocol: moto's real server on loopback stands in for Cloudflare
    pytest.importorskip("moto")
    s3 = pytest.importorskip("tests.s3_support")
    server = s3.MotoServer()
    try:
        bucket = s3.make_bucket(server.url)
        job = json.dumps({"input": {"spec": small_spec(poses=["standing"], views=1), "project": "r2"}})
        proc = run_handler(tmp_path / "unused", "--test_input", job, cwd=tmp_path,
                           POSE_FACTORY_R2_BUCKET=bucket, POSE_FACTORY_S3_ENDPOINT_URL=server.url,
                           CLOUDFLARE_R2_ACCESS_KEY_ID=s3.ACCESS_KEY, CLOUDFLARE_R2_SECRET_ACCESS_KEY=s3.SECRET_KEY)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        res = job_result(proc.stdout + proc.stderr)["output"]
        store = s3.s3_storage(server.url, bucket)
        manifest = json.loads(store.get_bytes(res["manifest_key"]))
        assert manifest["batch_id"] == res["batch_id"]
        assert all(store.exists(storage_mod.batch_prefix("r2", res["batch_id"]) + f["key"])
                   for e in manifest["entries"] for f in e["files"].values())
        assert not (tmp_path / "unused").exists()  # nothing went to the local folder
    finally:
        server.stop()
