"""Caps on a job's total work and the cost estimate from its size (issue 10, point 2): the estimate
from pixels x images x passes x samples (budget.RENDER_MODEL, fitted by bench/bench_render.py
--calibrate), the configured caps refusing a job before anything starts, the RunPod reservation,
the node's message and `render --dry-run`. Nothing here renders."""
import json
import socket
import sys
import types

import pytest

from pose_factory import cli, render, settings as settings_mod
from pose_factory.jobs import budget, client
from pose_factory.errors import SpecError

ISSUE_SPEC = {"render": {"width": 2048, "height": 2048, "shaded_samples": 1024},  # issue 10's example
              "cameras": {"type": "orbit", "views": 64}, "subjects": [{"poses": ["a_pose"] * 256}]}


def spec(size=512, views=4, poses=12, passes=None, samples=1):
    r = {"width": size, "height": size, "shaded_samples": samples}
    if passes is not None:
        r["passes"] = passes
    return {"render": r, "cameras": {"type": "orbit", "views": views},
            "subjects": [{"type": "mannequin", "poses": ["a_pose"] * poses}]}


def estimate(raw, **kw):
    return budget.estimate_job(render.prepare(raw, "x")[0], **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(tmp_path, **over):
    base = {"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
            "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")},
            "runpod": {"url_base": f"http://127.0.0.1:{closed_port()}/v2", "poll_interval_s": 0.05}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    return settings_mod.load_settings(overrides=base)


def test_estimate_grows_with_pixels_images_passes_and_samples():
    base = estimate(spec())["seconds"]
    assert estimate(spec(size=1024))["seconds"] > 2 * base - budget.RENDER_MODEL["startup_s"]
    assert estimate(spec(views=8))["seconds"] > 1.9 * base - budget.RENDER_MODEL["startup_s"]
    assert estimate(spec(passes=["openpose"]))["seconds"] < base
    assert estimate(spec(samples=64))["seconds"] > 2 * base
    size = estimate(spec())["size"]
    assert (size["images"], size["megapixels"], size["files_per_image"]) == (48, 48 * 512 * 512 / 1e6, 10)
    big = estimate(ISSUE_SPEC)
    assert big["size"]["images"] == 16384 and big["seconds"] > 21 * 3600  # the issue's "about 21 hours" and more
    assert "16384 images (64 views x 256 poses) at 2048x2048" in big["text"]


def test_runpod_reservation_follows_the_job_size(tmp_path):
    """Before: $0.0097 for a 64x64 single-pass job and for a 2048x2048 1024-sample one alike."""
    c = client.RunPodClient(make_settings(tmp_path), {"RUNPOD_API_KEY": "k", "RUNPOD_ENDPOINT_ID": "e"})
    small = c._estimate(render.prepare(spec(size=64, views=1, poses=1, passes=["openpose"]), "x")[0], 1)
    large = c._estimate(render.prepare(spec(size=2048, views=1, poses=1, samples=1024), "x")[0], 1)
    assert large > 10 * small
    est = estimate(spec(size=2048, views=1, poses=1, samples=1024), runpod=c.rp)
    assert est["usd"] == pytest.approx(large) and f"~${large:.2f} on RunPod (24gb)" in est["text"]


@pytest.mark.parametrize("backend", ["local", "runpod"])
def test_a_job_over_the_caps_is_refused_before_anything_starts(tmp_path, backend):
    settings = make_settings(tmp_path)
    env = {"RUNPOD_API_KEY": "k", "RUNPOD_ENDPOINT_ID": "e"}  # RunPod at a closed port: any request would fail
    try:
        with pytest.raises(SpecError) as info:
            client.run_job(ISSUE_SPEC, project="big", backend=backend, settings=settings, env=env)
        msg = str(info.value)
        assert msg.startswith("limits.max_images: got 16384 images (64 views x 256 poses)") and "at most 8192 images" in msg
        c = client.get_client(backend, settings, env)
        if backend == "local":
            assert c.proc is None  # the worker was never started
        else:
            assert c.ledger.entries() == []  # nothing reserved, nothing submitted
        assert not (tmp_path / "store" / "projects").exists()
        # every cap is configurable, and each refusal names its cap and the job's value
        tight = make_settings(tmp_path, limits={"max_render_s": 5})
        with pytest.raises(SpecError, match=r"^limits\.max_render_s: got \d+ s of estimated render time \(the job: "
                                            r"48 images .*allowed: at most 5 s of estimated render time"):
            client.run_job(spec(), project="big", backend=backend, settings=tight, env=env)
        tight = make_settings(tmp_path, limits={"max_megapixels": 10})
        with pytest.raises(SpecError, match=r"^limits\.max_megapixels: got 13 megapixels .*at most 10 megapixels"):
            client.run_job(spec(), project="big", backend=backend, settings=tight, env=env)
    finally:
        client.close_clients()


def test_limits_are_settings_with_checked_values(tmp_path):
    assert settings_mod.load_settings(overrides={"limits": {"max_images": 100}})["limits"]["max_images"] == 100
    with pytest.raises(settings_mod.SettingsError, match=r"config limits\.max_render_s: got 'a lot', allowed: a number"):
        settings_mod.load_settings(overrides={"limits": {"max_render_s": "a lot"}})


def test_render_dry_run_prints_the_estimate_and_submits_nothing(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "c")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    small, big = tmp_path / "small.json", tmp_path / "big.json"
    small.write_text(json.dumps(spec()))
    big.write_text(json.dumps(ISSUE_SPEC))
    assert cli.main(["render", str(small), "--dry-run", "--backend", "runpod"]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing submitted" in out and "48 images (4 views x 12 poses) at 512x512" in out
    assert "on RunPod (24gb)" in out and "within the limits" in out
    assert cli.main(["render", str(big), "--dry-run"]) == 2
    said = capsys.readouterr()
    assert "16384 images" in said.out and "error: limits.max_images: got 16384 images" in said.err
    assert not (tmp_path / "store").exists() and not (tmp_path / "ledger.sqlite").exists()


def test_request_node_shows_the_estimate_before_submitting(tmp_path, monkeypatch):
    from nodes.batch_nodes import PoseFactoryRequestPoseBatch
    from nodes.spec_nodes import PoseFactoryCameraOrbit, PoseFactoryMannequin, PoseFactoryPosePreset

    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "c")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")},
                               "limits": {"max_images": 1}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    messages = []
    server = types.SimpleNamespace(instance=types.SimpleNamespace(send_sync=lambda e, d, sid=None: messages.append((e, d))))
    monkeypatch.setitem(sys.modules, "server", types.SimpleNamespace(PromptServer=server))
    (subject,) = PoseFactoryMannequin().make(1.7, "average")
    (poses,) = PoseFactoryPosePreset().make("t_pose", False, "fist")
    (cams,) = PoseFactoryCameraOrbit().make(2, 5.0, 0.0, 50.0, False, 0.0, 30.0)
    try:
        with pytest.raises(SpecError, match=r"^limits\.max_images: got 2 images .*allowed: at most 1 images"):
            PoseFactoryRequestPoseBatch().request(subject, poses, cams, 64, 64, True, True, True, True, "batch", True,
                                                  True, False, "local", "demo", False, unique_id="3")
    finally:
        client.close_clients()
    (event, data), (event2, final) = messages
    assert event == "pose_factory.progress" and data["node"] == "3" and data["state"] == "queued"
    assert data["estimate"].startswith("2 images (2 views x 1 poses) at 64x64")
    # issue 21.6: the refused job's last message says so (the sidebar showed it "queued" for ever)
    assert event2 == "pose_factory.progress" and final["state"] == "refused" and final["node"] == "3"
    assert final["batch_id"] == data["batch_id"] and final["error"].startswith("limits.max_images: got 2 images")
