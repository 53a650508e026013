"""The founding 3D API (nodes/mesh_routes.py) through the real aiohttp handlers: a job from 8 view
images in the input folder followed to completed and its file served; bad requests are 400s, a bad
job id a 404; the job's record lives in storage, so a restarted server still answers for it."""
import asyncio
import datetime
import json
import time

import numpy as np
import pytest

from pose_factory import loading, render
from pose_factory import settings as settings_mod
from pose_factory.imageio import write_png
from pose_factory.mesh import jobs, views
from pose_factory.storage import LocalStorage, batch_prefix
from tests.test_routes import _serve as serve  # the real aiohttp handlers of routes.register

pytest.importorskip("aiohttp")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    settings = settings_mod.load_settings(overrides={"data_root": str(tmp / "data")})
    storage = LocalStorage(settings["storage"]["local_root"])
    yield settings, storage, tmp / "data" / "input"
    from pose_factory.jobs import client

    client.close_clients()


@pytest.mark.blender
def test_from_image_follows_the_states_to_completed_and_serves_the_file(env):
    settings, storage, input_dir = env
    # the mannequin, centred in the canonical box, shot by exactly the canonical cameras
    cams = views.canonical_cameras(8, 192, 192)
    spec = {"render": {"width": 192, "height": 192, "passes": ["seg", "shaded"]},
            "cameras": {"type": "list", "cameras": [{"location": c["location"], "look_at": [0.0, 0.0, 0.0]}
                                                    for c in cams]},
            "subjects": [{"poses": [{"preset": "a_pose", "offset": [0.0, 0.0, -0.88]}]}]}
    m, _ = render.render_batch(spec, storage, project="shots")
    folder = storage.local_path(batch_prefix("shots", m["batch_id"]))
    shaded = loading._decode(folder, m, loading.select_entries(m), "shaded", "rgb")
    names = []
    for i, img in enumerate(shaded):
        write_png(str(input_dir / "views" / f"v{i}.png"), img)
        names.append(f"views/v{i}.png")
    (input_dir / "notes.png").write_text("not pixels")

    async def scenario(c):
        r = await c.post("/pose_factory/3d/from-image", json={"images": names, "output_format": "obj",
                                                              "quality_tier": "draft", "backend": "local",
                                                              "project": "api"})
        body = await r.json()
        assert r.status == 202, body
        job_id, url = body["job_id"], body["status_url"]
        assert url == f"/pose_factory/3d/status/{job_id}"
        seen = []
        deadline = time.monotonic() + 600  # a guard against a hang, not a timing assertion
        while time.monotonic() < deadline:
            st = await (await c.get(url)).json()
            seen.append(st["state"])
            if st["state"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.2)
        assert st["state"] == "completed", st
        assert set(seen) <= {"queued", "generating_images", "reconstructing_3d", "post_processing", "completed"}
        r = await c.get(st["download_url"])
        data = await r.read()
        assert r.status == 200 and data == storage.get_bytes(st["asset_path"])
        assert data.count(b"\nf ") > 1000 and st["asset_path"].endswith(".obj")

        for bad, says in [({"images": names[:3]}, "images: got 3 images, allowed: a list of 4 or 8 views"),
                          ({"images": names[:7] + ["notes.png"]}, "images[7]: not an image file"),
                          ({"images": names[:7] + ["../../etc/passwd"]}, "lies outside the input folder"),
                          ({"images": names, "output_format": "usd"}, "output_format: got 'usd'"),
                          ({"images": names, "reconstruction": "trellis"},
                           "unknown backend 'trellis', allowed: one of the installed backends: visual_hull")]:
            r = await c.post("/pose_factory/3d/from-image", json=bad)
            assert r.status == 400 and says in (await r.json())["error"], (says, await r.text())
        for bad_id in ("nope", "0" * 32, "A" * 32):
            r = await c.get(f"/pose_factory/3d/status/{bad_id}")
            assert r.status == 404 and "not found" in (await r.json())["error"]
            r = await c.get(f"/pose_factory/3d/download/{bad_id}")
            assert r.status == 404
        env_state["done"] = st

    env_state = {}
    serve(settings, storage, scenario)

    async def after_restart(c):  # a new app on the same storage: the job is still there
        r = await c.get(f"/pose_factory/3d/status/{env_state['done']['job_id']}")
        assert r.status == 200 and (await r.json())["state"] == "completed"

    serve(settings, storage, after_restart)


def test_a_job_left_running_by_a_gone_server_reads_as_failed(tmp_path):
    storage = LocalStorage(tmp_path)
    job_id = jobs.new_job_id()
    record = {"job_id": job_id, "state": "reconstructing_3d", "message": "", "project": "p", "batch_id": None,
              "asset_key": None, "output_format": "glb", "created_at": "x", "owner": "elsewhere:12345"}
    jobs.write(storage, record)  # fresh: another server's running job, left alone
    assert jobs.read(storage, job_id)["state"] == "reconstructing_3d"
    stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=jobs.STALE_S + 5)
    storage.put_bytes(jobs.key(job_id), json.dumps(dict(record, updated_at=stale.isoformat())).encode())
    record = jobs.read(storage, job_id)
    assert record["state"] == "failed" and "server restarted while the job ran" in record["message"]
    assert json.loads(storage.get_bytes(jobs.key(job_id)))["state"] == "failed"


def test_download_before_completion_is_409(tmp_path):
    from nodes import mesh_routes
    from nodes.routes import RouteError

    storage = LocalStorage(tmp_path)
    started = jobs.start(storage, {"project": "p", "output_format": "glb"}, lambda progress: (_ for _ in ()).throw(
        RuntimeError("the worker said no")))
    for _ in range(100):
        if jobs.read(storage, started["job_id"])["state"] == "failed":
            break
        time.sleep(0.05)
    with pytest.raises(RouteError) as e:
        mesh_routes.download({}, storage, started["job_id"], RouteError)
    assert e.value.status == 409 and "RuntimeError: the worker said no" in e.value.message
