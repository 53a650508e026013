"""Issue 21.10: the job estimate learns from this machine's own measured renders (per image size
and pass set, kept with the cost ledger), adds the worker's start when it is not running, and
says which it is ("first guess" or "from N renders on this machine"). Real renders through the
local worker, recorded by the job client's own path; no time is asserted, only that the estimate
is what the recorded measurements make it."""
import json

import pytest

from pose_factory import render
from pose_factory.jobs import budget, client
from pose_factory import settings as settings_mod


def spec(poses):
    return render.prepare({"schema_version": "1.0", "kind": "pose_batch", "project": "estimates",
                           "render": {"width": 128, "height": 160, "passes": ["openpose", "keypoints"]},
                           "cameras": {"type": "orbit", "views": 1, "elevation": 10},
                           "subjects": [{"type": "mannequin", "poses": poses}]}, "estimates")[0]


@pytest.mark.blender
def test_the_estimate_learns_from_this_machines_renders_and_its_cold_starts(tmp_path, monkeypatch):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    settings, env = settings_mod.load_settings(), settings_mod.load_env()
    client.close_clients()
    first, second, third = spec(["a_pose"]), spec(["waving"]), spec(["t_pose", "standing"])
    try:
        guess = client.estimate(first, settings, "local", env)
        assert guess["basis"].startswith("first guess") and "first guess" in guess["text"]
        assert guess["seconds"] == pytest.approx(guess["model_s"])
        assert guess["cold_s"] == budget.FIRST_GUESS_COLD_S and "to start the worker (first guess)" in guess["text"]

        made = [client.run_job(s, backend="local", settings=settings, env=env) for s in (first, second)]
        rows = client.render_times(settings).rows()
        assert [r["cold"] for r in rows] == [False, True]  # newest first: the first render started the worker
        assert {r["key"] for r in rows} == {budget.render_key(first)} == {"128x160 keypoints+openpose"}
        for row, res in zip(rows, reversed(made)):  # measured around the worker's job: never less than
            assert row["seconds"] >= res.manifest["timings"]["wall"] > 0  # what the worker timed inside it
        cold_row, warm_row = rows[1], rows[0]

        # warm now: the same size and passes, twice the images, from the one warm render measured
        learned = client.estimate(third, settings, "local", env)
        assert learned["basis"] == "from 1 render on this machine" and "(from 1 render on this machine)" in learned["text"]
        assert learned["cold_s"] == 0 and "start the worker" not in learned["text"]
        assert learned["seconds"] == pytest.approx(learned["model_s"] * warm_row["seconds"] / warm_row["model_s"])
        same = client.estimate(second, settings, "local", env)  # the size it measured: exactly what it took
        assert same["seconds"] == pytest.approx(warm_row["seconds"])
        # another size: the machine's speed, said so
        other = client.estimate(render.prepare(dict(first, render=dict(first["render"], width=256)), "estimates")[0],
                                settings, "local", env)
        assert other["basis"] == "from 1 render on this machine, other sizes or passes"
    finally:
        client.close_clients()
    cold = client.estimate(second, settings, "local", env)  # the worker is gone: its start is added
    assert cold["cold_s"] == pytest.approx(max(cold_row["seconds"] - warm_row["seconds"], 0.0))
    assert "(from 1 cold start on this machine)" in cold["text"]
    # RunPod: the model and its cost, never this machine's CPU times
    rp = client.estimate(second, settings, "runpod", env)
    assert rp["seconds"] == pytest.approx(rp["model_s"]) and rp["basis"] == "first guess: the render model"


def test_a_ledger_without_render_times_is_read_without_creating_anything(tmp_path):
    times = budget.RenderTimes(tmp_path / "sub" / "ledger.sqlite")
    assert times.rows() == [] and not (tmp_path / "sub").exists()
    budget.Ledger(tmp_path / "ledger.sqlite")  # a ledger made before render times existed
    assert budget.RenderTimes(tmp_path / "ledger.sqlite").rows() == []
