"""The local RunPod v2 stand-in (tests/runpod_v2_server.py) proven faithful by the UNMODIFIED
`runpod.Endpoint` pointed at it through `runpod.endpoint_url_base` (DESIGN.md §6): run, status,
output, cancel, run_sync, health — while the jobs run in real SDK worker processes executing the
real handler (real queueing, progress_update, cancellation killing the Blender child).
Loopback only: the server binds 127.0.0.1 and the workers get no RUNPOD_* variable but its own."""
import time

import pytest

from pose_factory import storage as storage_mod

psutil = pytest.importorskip("psutil")
runpod = pytest.importorskip("runpod")
from tests.runpod_v2_server import RunPodV2Server  # noqa: E402

pytestmark = pytest.mark.blender
API_KEY = "rp-local-test-key"


def spec(poses=("a_pose",), views=1, size=96):
    return {"schema_version": "1.0", "kind": "pose_batch",
            "render": {"width": size, "height": size, "shaded_samples": 4},
            "cameras": {"type": "orbit", "views": views, "elevation": 5},
            "subjects": [{"type": "mannequin", "poses": list(poses)}]}


# 256 images: ~20 s of rendering on a fast machine; every test that starts it cancels or times it out
LONG_SPEC = spec(poses=["a_pose", "walk_left_step", "standing", "waving"] * 4, views=16, size=128)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("rp_store")
    logs = tmp_path_factory.mktemp("rp_logs")
    with RunPodV2Server(API_KEY, env={"POSE_FACTORY_STORAGE_ROOT": str(store)}, workers=1,
                        worker_log=logs / "worker") as srv:
        srv.store = store
        yield srv


@pytest.fixture
def endpoint(server, monkeypatch):
    monkeypatch.setattr(runpod, "api_key", API_KEY)
    monkeypatch.setattr(runpod, "endpoint_url_base", server.url_base)
    assert server.url_base.startswith("http://127.0.0.1:")
    return runpod.Endpoint(server.endpoint_id)


def raw_status(ep, job):
    """The full status body through the SDK's own client (Job.status() returns only the word)."""
    return ep.rp_client.get(f"{ep.endpoint_id}/status/{job.job_id}")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def blender_children():
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "blender_scripts.render_batch" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


def wait_rendering(ep, job, timeout=90):
    def rendering():
        st = raw_status(ep, job)
        assert st["status"] in ("IN_QUEUE", "IN_PROGRESS"), st
        return st if (st.get("output") or {}).get("state") == "rendering" else None
    return wait_for(rendering, timeout, "the job to report 'rendering'")


def alive(p) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(procs, timeout=10):
    wait_for(lambda: not any(alive(p) for p in procs) and not blender_children(), timeout,
             "the Blender child to be killed")


def worker_log(server) -> str:
    return (server.worker_log.parent / f"{server.worker_log.name}.0").read_text()


def test_run_status_output_renders_a_batch(endpoint, server):
    job = endpoint.run({"input": {"spec": spec(poses=["a_pose", "standing"]), "project": "rp"}})
    seen, progress = [], []
    def done():
        st = raw_status(endpoint, job)
        seen.append(st["status"])
        if st["status"] == "IN_PROGRESS" and "output" in st:
            progress.append(st["output"]["state"])
        return st if st["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT") else None
    final = wait_for(done, 90, "the job to finish")
    assert final["status"] == "COMPLETED", final
    assert set(seen) <= {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"} and "IN_PROGRESS" in seen
    assert progress and set(progress) <= {"queued", "rendering", "extracting", "uploading", "completed"}
    assert isinstance(final["delayTime"], int) and final["delayTime"] >= 0
    assert isinstance(final["executionTime"], int)
    assert final["executionTime"] >= 1000 * final["output"]["timings"]["handler"] - 50
    # the unmodified SDK surface
    assert job.status() == "COMPLETED"
    out = job.output()
    assert out == final["output"] and out["rendered"] is True and out["entries"] == 2 and out["project"] == "rp"
    manifest = server.store / out["manifest_key"]
    assert manifest.is_file() and out["batch_id"] in out["manifest_key"]
    assert storage_mod.list_batches(storage_mod.LocalStorage(server.store), "rp")
    health = endpoint.health()
    assert health["jobs"]["completed"] >= 1 and health["jobs"]["inQueue"] == 0
    assert health["workers"]["ready"] == 1 and health["workers"]["running"] == 0


def test_second_job_waits_in_queue_and_cancel_kills_blender(endpoint, server):
    first = endpoint.run({"input": {"spec": LONG_SPEC, "project": "cancelled"}})
    wait_rendering(endpoint, first)
    children = blender_children()
    assert len(children) == 1
    second = endpoint.run({"input": {"spec": spec(poses=["waving"]), "project": "after"}})
    time.sleep(1.5)  # the only worker slot is busy: the second job must stay queued
    assert second.status() == "IN_QUEUE" and raw_status(endpoint, second) == {"id": second.job_id, "status": "IN_QUEUE"}
    health = endpoint.health()
    assert health["jobs"]["inQueue"] == 1 and health["jobs"]["inProgress"] == 1
    assert health["workers"]["running"] == 1 and health["workers"]["idle"] == 0

    t0 = time.monotonic()
    reply = first.cancel()
    assert reply == {"id": first.job_id, "status": "CANCELLED"}
    assert first.status() == "CANCELLED"
    wait_gone(children)  # the SDK cancelled the handler's task; the handler killed Blender
    assert time.monotonic() - t0 < 10
    # through the SDK's own stop channel (JobScaler.stop_job), the worker process itself lives on
    wait_for(lambda: "Job stopped." in worker_log(server), 10, "the SDK to log the stop")
    assert all(p.poll() is None for p in server.workers.values())
    # the freed slot takes the queued job
    out = second.output(timeout=90)
    assert second.status() == "COMPLETED" and (server.store / out["manifest_key"]).is_file()
    st = raw_status(endpoint, second)
    assert st["delayTime"] >= 1500  # it really waited behind the first
    # the cancelled job wrote no manifest, and no late result turned it into anything else
    assert not list((server.store / "projects").glob("cancelled/**/manifest.json"))
    assert storage_mod.list_batches(storage_mod.LocalStorage(server.store), "cancelled") == []
    assert raw_status(endpoint, first)["status"] == "CANCELLED" and "output" not in raw_status(endpoint, first)


def test_cancel_a_queued_job_never_runs_it(endpoint, server):
    first = endpoint.run({"input": {"spec": LONG_SPEC, "project": "cq1"}})
    wait_rendering(endpoint, first)
    queued = endpoint.run({"input": {"spec": spec(poses=["standing"], views=2), "project": "cq2"}})
    assert queued.status() == "IN_QUEUE"
    assert queued.cancel()["status"] == "CANCELLED"
    children = blender_children()
    assert first.cancel()["status"] == "CANCELLED"
    wait_gone(children)
    # the worker is free again: a new job runs, the cancelled queued one never did
    assert endpoint.run_sync({"input": {"spec": spec(), "project": "cq3"}}, timeout=90)["rendered"] in (True, False)
    assert queued.status() == "CANCELLED"
    assert storage_mod.list_batches(storage_mod.LocalStorage(server.store), "cq2") == []


def test_bad_input_fails_with_the_field_named(endpoint, server):
    job = endpoint.run({"input": {"spec": spec(), "force": "yes"}})
    assert job.output(timeout=60) is None  # a failed job has no output
    assert job.status() == "FAILED"
    st = raw_status(endpoint, job)
    assert st["error"].startswith("input.force:") and "Traceback" not in st["error"]
    job = endpoint.run({"input": {"spec": dict(spec(), cameras={"type": "orbit", "views": 0})}})
    wait_for(lambda: job.status() == "FAILED", 60, "FAILED")
    assert raw_status(endpoint, job)["error"].startswith("input.spec.cameras.views")
    assert endpoint.health()["jobs"]["failed"] >= 2


def test_runsync_returns_output_or_the_running_status(endpoint, server):
    out = endpoint.run_sync({"input": {"spec": spec(poses=["standing"]), "project": "sync"}}, timeout=90)
    assert (server.store / out["manifest_key"]).is_file()
    # a wait shorter than the job: the cloud answers with the job's id and its current status
    t0 = time.monotonic()
    st = endpoint.rp_client.post(f"{endpoint.endpoint_id}/runsync?wait=800",
                                 {"input": {"spec": LONG_SPEC, "project": "sync-long"}}, timeout=30)
    assert 0.7 < time.monotonic() - t0 < 10
    assert st["status"] in ("IN_QUEUE", "IN_PROGRESS") and st["id"]
    job = runpod.endpoint.runner.Job(endpoint.endpoint_id, st["id"], endpoint.rp_client)
    wait_rendering(endpoint, job)
    children = blender_children()
    assert job.cancel()["status"] == "CANCELLED"
    wait_gone(children)


def test_execution_timeout_policy_times_out_and_kills_blender(endpoint, server):
    job = endpoint.run({"input": {"spec": LONG_SPEC, "project": "slow"}, "policy": {"executionTimeout": 3000}})
    wait_rendering(endpoint, job)
    children = blender_children()
    final = wait_for(lambda: job.status() in ("TIMED_OUT", "COMPLETED", "FAILED") and raw_status(endpoint, job),
                     30, "TIMED_OUT")
    assert final["status"] == "TIMED_OUT" and 3000 <= final["executionTime"] < 5000
    wait_gone(children)
    assert storage_mod.list_batches(storage_mod.LocalStorage(server.store), "slow") == []


def test_wrong_or_missing_api_key_is_401(endpoint, server, monkeypatch):
    before = endpoint.health()["jobs"]
    bad = runpod.Endpoint(server.endpoint_id, api_key="not-the-key")
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        bad.run({"input": {"spec": spec()}})
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        bad.health()
    import requests

    r = requests.post(f"{server.url_base}/{server.endpoint_id}/run", json={"input": {"spec": spec()}}, timeout=5)
    assert r.status_code == 401
    r = requests.get(f"{server.url_base}/{server.endpoint_id}/status/x", headers={"Authorization": "Bearer "},
                     timeout=5)
    assert r.status_code == 401
    # the worker-side routes refuse the client key as well
    r = requests.get(f"{server.url_base}/{server.endpoint_id}/job-take/intruder?gpu=x",
                     headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert r.status_code == 401
    assert endpoint.health()["jobs"] == before  # nothing was queued
    r = requests.get(f"{server.url_base}/{server.endpoint_id}/status/no-such-job",
                     headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert r.status_code == 404


def test_run_body_over_the_cloud_limit_is_refused(endpoint, server):
    import requests

    before = endpoint.health()["jobs"]
    big = {"input": {"spec": spec(), "blob": "x" * (10 * 1024 * 1024)}}
    r = requests.post(f"{server.url_base}/{server.endpoint_id}/run", json=big, timeout=30,
                      headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 413 and "10485760" in r.json()["error"]
    assert endpoint.health()["jobs"] == before
