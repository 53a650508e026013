"""The reconstruct worker job end to end: the views uploaded, the real local worker process running
the job with its states, cancel and the batch read back; and its input checks."""
import pytest

from pose_factory import loading, render, settings as settings_mod
from pose_factory.jobs import client
from pose_factory.mesh import reconstruct, views
from pose_factory.mesh.client import request_mesh
from pose_factory.storage import LocalStorage, batch_prefix, read_manifest


def test_reconstruct_input_is_checked_before_it_runs():
    request = pytest.importorskip("pod_worker.request")  # the runpod SDK is in the worker venv only
    good = {"spec": {"kind": "reconstruct"}, "project": "p", "images": ["projects/p/uploads/a.png"] * 4}
    assert request.parse_input(good)["images"] == good["images"]
    for bad, says in [
        (dict(good, images=["/etc/passwd"]), "input.images[0]: got '/etc/passwd', allowed: an http(s) URL or a key "
                                             "under projects/p/uploads/"),
        (dict(good, images=["projects/p/uploads/../../x.png"]), "input.images[0]"),
        (dict(good, images=[]), "input.images: got [], allowed: a list of 1 to 64"),
        (dict(good, masks=["projects/p/uploads/m.png"]), "input.masks: got 1 masks for 4 images"),
        (dict(good, spec={"kind": "reconstruct", "backend": "nope"}),
         "input.spec.backend: unknown backend 'nope', allowed: one of the installed backends: visual_hull"),
        (dict(good, shard={"views": [0, 1]}), "input.shard: a reconstruct job is never sharded"),
        ({"spec": {"subjects": [{"poses": ["a_pose"]}]}, "images": ["x"]}, "input.images: only a reconstruct or extract job"),
    ]:
        with pytest.raises(request.InputError) as e:
            request.parse_input(bad)
        assert says in str(e.value), (says, str(e.value))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mesh_job")
    s = settings_mod.load_settings(overrides={
        "storage": {"local_root": str(tmp / "store"), "cache_root": str(tmp / "cache")},
        "budget": {"ledger_path": str(tmp / "ledger.sqlite")}})
    storage = LocalStorage(s["storage"]["local_root"])
    spec = {"render": {"width": 192, "height": 192, "passes": ["seg", "shaded"]}, "cameras": views.rig(4),
            "subjects": [{"poses": ["t_pose"]}]}
    m, _ = render.render_batch(spec, storage, project="views")
    folder = storage.local_path(batch_prefix("views", m["batch_id"]))
    images = loading._decode(folder, m, loading.select_entries(m), "shaded", "rgb")
    yield s, m, list(images)
    client.close_clients()


@pytest.mark.blender
def test_request_mesh_runs_in_the_local_worker_with_the_founding_states(local):
    s, m, images = local
    events = []
    res = request_mesh(images, None, {"cameras": m["views"], "formats": ["glb", "obj"], "quality_tier": "draft"},
                       project="meshes", backend="local", settings=s, on_progress=events.append)
    assert res.rendered and res.backend == "local"
    states = [e["state"] for e in events]
    for a, b in zip(["queued", "generating_images", "reconstructing_3d", "post_processing"],
                    ["generating_images", "reconstructing_3d", "post_processing", "completed"]):
        assert states.index(a) < states.index(b), states
    stored = read_manifest(LocalStorage(s["storage"]["local_root"]), "meshes", res.batch_id)
    assert stored["asset"]["faces"] > 1000 and set(stored["asset"]["files"]) == {"glb", "obj"}
    assert stored["spec"]["resolution"] == reconstruct.TIERS["draft"]
    again = request_mesh(images, None, {"cameras": m["views"], "formats": ["glb", "obj"], "quality_tier": "draft"},
                         project="meshes", backend="local", settings=s)
    assert not again.rendered and again.batch_id == res.batch_id
    assert client.active_jobs() == []


class Interrupted(Exception):
    pass


@pytest.mark.blender
def test_cancel_stops_the_job_and_writes_no_manifest(local):
    s, m, images = local
    seen = []

    def check_cancel():
        if "reconstructing_3d" in seen:
            raise Interrupted()

    with pytest.raises(Interrupted):
        request_mesh(images, None, {"cameras": m["views"], "formats": ["glb", "obj", "fbx"], "resolution": 320},
                     project="cancelled", backend="local", settings=s,
                     on_progress=lambda e: seen.append(e["state"]), check_cancel=check_cancel)
    store = LocalStorage(s["storage"]["local_root"])
    assert not [k for k in store.list("projects/cancelled/batches/") if k.endswith("manifest.json")]
    assert client.active_jobs() == []
    # the worker takes the next job
    assert request_mesh(images, None, {"cameras": m["views"], "quality_tier": "draft", "post": {"uvs": False}},
                        project="cancelled", backend="local", settings=s).rendered


@pytest.mark.blender
def test_request_mesh_on_runpod_reserves_and_settles_its_cost(local, tmp_path):
    """The same job through the RunPod v2 API stand-in, whose workers run the real handler under the
    real SDK (tests/runpod_v2_server.py)."""
    pytest.importorskip("runpod")
    from tests.runpod_v2_server import RunPodV2Server

    _s, m, images = local
    with RunPodV2Server("rp-mesh-key", env={"POSE_FACTORY_STORAGE_ROOT": str(tmp_path / "store")}, workers=1,
                        worker_log=tmp_path / "worker") as srv:
        s = settings_mod.load_settings(overrides={
            "storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
            "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")},
            "runpod": {"poll_interval_s": 0.2, "url_base": srv.url_base}})
        env = {"RUNPOD_API_KEY": "rp-mesh-key", "RUNPOD_ENDPOINT_ID": srv.endpoint_id}
        events = []
        res = request_mesh(images, None, {"cameras": m["views"], "quality_tier": "draft"}, project="rp-mesh",
                           backend="runpod", settings=s, env=env, on_progress=events.append)
        assert res.rendered and res.backend == "runpod" and res.cost_usd > 0
        assert read_manifest(LocalStorage(tmp_path / "store"), "rp-mesh", res.batch_id)["asset"]["faces"] > 1000
        ledger = client.get_client("runpod", s, env).ledger.entries()
        assert len(ledger) == 1 and ledger[0]["state"] == "settled"
        with pytest.raises(client.JobFailed, match=r"could not download 'http://127.0.0.1:1/v.png'"):
            request_mesh(["http://127.0.0.1:1/v.png"] * 4, None, {}, project="rp-mesh", backend="runpod",
                         settings=s, env=env)
