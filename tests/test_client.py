"""Job clients (pose_factory/jobs/client.py): the local worker process and the RunPod v2 client, with
real bpy renders. The runpod client runs against tests/runpod_v2_server.py, whose workers are the
real handler under the real SDK (DESIGN.md §6)."""
import os
import signal
import threading
import time

import pytest

from pose_factory import render, settings as settings_mod
from pose_factory.jobs import budget, client
from pose_factory.storage import index
from pose_factory.storage import LocalStorage, read_manifest

psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.blender


def spec(poses=("a_pose",), views=2, size=64, **render_extra):
    return {"schema_version": "1.0", "kind": "pose_batch",
            "render": {"width": size, "height": size, **render_extra},
            "cameras": {"type": "orbit", "views": views, "elevation": 5},
            "subjects": [{"type": "mannequin", "poses": list(poses)}]}


LONG = spec(poses=["a_pose", "walk_left_step", "standing", "waving"] * 4, views=16, size=128)


def make_settings(tmp, **over):
    base = {"storage": {"local_root": str(tmp / "store"), "cache_root": str(tmp / "cache")},
            "budget": {"ledger_path": str(tmp / "ledger.sqlite")}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return settings_mod.load_settings(overrides=base)


def render_children(parent_pid=None):
    """Blender render processes under this test process (or under parent_pid)."""
    root = psutil.Process(parent_pid) if parent_pid else psutil.Process()
    found = []
    for p in root.children(recursive=True):
        try:
            if "blender_scripts.render_batch" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            pass
    return found


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


class Interrupted(Exception):
    """What ComfyUI's interrupt check raises, here."""


def cancel_while_rendering(run, children):
    """run(on_progress, check_cancel), interrupted once the render has made progress; then the
    render processes (children()) that were running by then must be gone."""
    seen = []

    def on_progress(e):
        if e["state"] == "rendering" and e["done"] >= 1 and not seen:
            seen.extend(p.pid for p in children())

    def check_cancel():
        if seen:
            raise Interrupted()

    with pytest.raises(Interrupted):
        run(on_progress, check_cancel)
    assert seen, "a Blender render process was running"
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                             for p in seen), 15, "the cancelled render process to be killed")


def comparable(manifest):
    """A manifest without what differs between two renders of one spec (when, how long, cost, and
    the generation folder a re-render's files go to)."""
    out = {k: v for k, v in manifest.items() if k not in ("created_at", "timings", "cost", "entries")}
    out["entries"] = [dict(e, files={n: dict(i, key=i["key"].split("/", 1)[1] if i["key"].startswith("gen-")
                                               else i["key"]) for n, i in e["files"].items()})
                      for e in manifest["entries"]]
    return out


# --- local ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local_client")
    s = make_settings(tmp)
    c = client.LocalClient(s, settings_mod.load_env())
    yield s, c
    c.close()


def test_local_renders_once_reports_states_and_records_the_index(local):
    s, c = local
    events = []
    res = c.run(spec(), project="lc", on_progress=events.append)
    assert res.rendered and res.backend == "local"
    assert read_manifest(LocalStorage(s["storage"]["local_root"]), "lc", res.batch_id) == res.manifest
    states = [e["state"] for e in events]
    for state in ("queued", "rendering", "uploading", "completed"):
        assert state in states, states
    assert states.index("rendering") < states.index("uploading") < states.index("completed")
    assert all(set(e) == {"state", "done", "total"} for e in events)
    pid = c.proc.pid
    again = c.run(spec(), project="lc", on_progress=events.append)
    assert not again.rendered and again.manifest == res.manifest and c.proc.pid == pid
    forced = c.run(spec(), project="lc", force=True)
    assert forced.rendered and c.proc.pid == pid  # the same warm worker
    assert comparable(forced.manifest) == comparable(res.manifest)

    r = client.run_job(spec(views=1), project="lc2", settings=s)
    assert r.batch_id in index.batches(s["storage"]["cache_root"], "lc2")


def test_local_worker_keeps_a_warm_render_child_and_restarts_when_killed(local):
    s, c = local
    c.ensure_started()
    wait_for(lambda: any("--standby" in p.cmdline() for p in render_children(c.proc.pid)), 60,
             "the worker's standby render process")
    old = c.proc.pid
    os.kill(old, signal.SIGKILL)
    c.proc.wait()
    res = c.run(spec(poses=["standing"], views=1), project="lc")
    assert res.rendered and c.proc.pid != old


def test_local_cancel_kills_the_render_and_writes_no_manifest(local):
    s, c = local
    bid = render.prepare(LONG, "lc-cancel")[2]
    # the render child under the worker (the standby that took the job) is killed
    cancel_while_rendering(lambda on_progress, check_cancel: c.run(
        LONG, project="lc-cancel", on_progress=on_progress, check_cancel=check_cancel),
        lambda: render_children(c.proc.pid))
    assert read_manifest(LocalStorage(s["storage"]["local_root"]), "lc-cancel", bid) is None
    assert client.active_jobs() == []
    # the worker lives on and takes the next job
    assert c.run(spec(poses=["waving"], views=1), project="lc").rendered


def test_local_errors_name_the_problem(tmp_path):
    s = make_settings(tmp_path, worker_python=str(tmp_path / "no-python"))
    with pytest.raises(client.ClientConfigError, match="worker_python"):
        client.LocalClient(s, {}).run(spec(), project="x")
    with pytest.raises(client.ClientConfigError, match="allowed: local, runpod"):
        client.get_client("cloud", s, {})
    with pytest.raises(Exception, match=r"cameras\.views"):
        client.LocalClient(make_settings(tmp_path), {}).run(spec(views=0), project="x")


# --- RunPod --------------------------------------------------------------------------------------
API_KEY = "rp-client-key"


@pytest.fixture(scope="module")
def rp_server(tmp_path_factory):
    from tests.runpod_v2_server import RunPodV2Server

    tmp = tmp_path_factory.mktemp("rp_client")
    with RunPodV2Server(API_KEY, env={"POSE_FACTORY_STORAGE_ROOT": str(tmp / "store")}, workers=2,
                        worker_log=tmp / "worker") as srv:
        srv.tmp = tmp
        yield srv


def rp_client(srv, tmp, **runpod_over):
    s = make_settings(tmp, storage={"local_root": str(srv.tmp / "store"), "cache_root": str(tmp / "cache")},
                      runpod={"poll_interval_s": 0.2, "url_base": srv.url_base, **runpod_over})
    env = {"RUNPOD_API_KEY": API_KEY, "RUNPOD_ENDPOINT_ID": srv.endpoint_id}
    return s, client.RunPodClient(s, env)


def runs(srv):
    return [p for m, p in list(srv.requests) if m == "POST" and p.endswith("/run")]


def test_runpod_renders_settles_the_cost_and_skips_a_known_batch(rp_server, tmp_path):
    s, c = rp_client(rp_server, tmp_path)
    events = []
    res = c.run(spec(), project="rp", on_progress=events.append)
    assert res.rendered and res.backend == "runpod" and res.job_id
    assert res.manifest == read_manifest(c.storage, "rp", res.batch_id)
    assert "rendering" in [e["state"] for e in events] or "completed" in [e["state"] for e in events]
    entries = c.ledger.entries()
    assert len(entries) == 1 and entries[0]["state"] == "settled" and res.cost_usd > 0
    n = len(runs(rp_server))
    again = c.run(spec(), project="rp")
    assert not again.rendered and len(runs(rp_server)) == n  # nothing submitted


def test_runpod_shards_merge_to_the_unsharded_manifest(rp_server, tmp_path):
    six = spec(poses=["a_pose", "waving"], views=6)
    direct, _ = render.render_batch(six, LocalStorage(tmp_path / "direct"), project="shards")
    s, c = rp_client(rp_server, tmp_path, max_shard_views=2)
    n = len(runs(rp_server))
    events = []
    res = c.run(six, project="shards", on_progress=events.append)
    assert len(runs(rp_server)) - n == 3  # three shard jobs
    assert res.rendered and comparable(res.manifest) == comparable(direct)
    assert res.manifest["cost"]["jobs"] == 3
    stored = read_manifest(c.storage, "shards", res.batch_id)
    assert stored == res.manifest
    assert events[-1]["state"] == "completed"
    assert len(c.ledger.entries()) == 1  # one reservation per batch, settled from three jobs


def test_runpod_cancel_kills_blender_and_leaves_no_manifest(rp_server, tmp_path):
    s, c = rp_client(rp_server, tmp_path)
    bid = render.prepare(LONG, "rp-cancel")[2]
    cancel_while_rendering(lambda on_progress, check_cancel: c.run(
        LONG, project="rp-cancel", on_progress=on_progress, check_cancel=check_cancel),
        lambda: [p for p in render_children() if "--standby" not in p.cmdline()])
    assert read_manifest(c.storage, "rp-cancel", bid) is None
    cancels = [p for m, p in list(rp_server.requests) if m == "POST" and "/cancel/" in p]
    assert cancels
    assert c.ledger.entries()[0]["state"] == "settled" and c.ledger.reserved_usd() == 0


def test_runpod_failures_are_final_with_the_workers_message(rp_server, tmp_path):
    s, c = rp_client(rp_server, tmp_path, job_timeout_s=2)
    with pytest.raises(client.JobTimeout, match="timed out"):
        c.run(LONG, project="rp-timeout", force=True)
    wait_for(lambda: not [p for p in render_children() if "--standby" not in p.cmdline()], 15,
             "the timed-out render to be killed")
    bad = client.RunPodClient(s, {"RUNPOD_API_KEY": "wrong", "RUNPOD_ENDPOINT_ID": rp_server.endpoint_id})
    with pytest.raises(client.JobFailed, match="401") as e:
        bad.run(spec(poses=["standing"]), project="rp")
    assert "wrong" not in str(e.value)
    with pytest.raises(client.ClientConfigError, match="RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID"):
        client.RunPodClient(s, {})


def test_runpod_budget_refuses_before_submitting_and_in_a_race_exactly_one(rp_server, tmp_path):
    s, c = rp_client(rp_server, tmp_path)
    estimate = c._estimate(render.prepare(spec(views=1), "x")[0], 1)
    s2, tight = rp_client(rp_server, tmp_path / "tight", startup_s=0, idle_timeout_s=0)
    n = len(runs(rp_server))
    ledger = budget.Ledger(tmp_path / "tight" / "ledger.sqlite", estimate / 1000)
    tight.ledger = ledger
    with pytest.raises(budget.BudgetExceeded, match=r"spent or reserved of \$0\.00"):
        tight.run(spec(poses=["sitting"], views=1), project="rp-budget")
    assert len(runs(rp_server)) == n  # refused before anything was submitted

    # two clients in threads, each with its own ledger connection, racing for a budget that
    # holds one job: exactly one is refused, and only one job reaches RunPod
    # estimates below any real cost, so the winner's settled cost cannot make room for the loser
    # however late the loser's thread gets to reserve on a busy machine
    race = {"startup_s": 0, "idle_timeout_s": 0, "speed_factor": 0.03}
    small = rp_client(rp_server, tmp_path / "race", **race)[1]._estimate(render.prepare(spec(views=1), "x")[0], 1)
    limit = small * 1.5
    barrier = threading.Barrier(2)
    outcomes = []

    def go(pose):
        _, cl = rp_client(rp_server, tmp_path / "race", **race)
        cl.ledger = budget.Ledger(tmp_path / "race" / "ledger.sqlite", limit)
        barrier.wait()
        try:
            outcomes.append(cl.run(spec(poses=[pose], views=1), project="rp-race").rendered)
        except budget.BudgetExceeded:
            outcomes.append("refused")

    n = len(runs(rp_server))
    threads = [threading.Thread(target=go, args=(p,)) for p in ("thinking", "crouching")]
    [t.start() for t in threads]
    [t.join(300) for t in threads]
    assert sorted(map(str, outcomes)) == ["True", "refused"]
    assert len(runs(rp_server)) - n == 1
