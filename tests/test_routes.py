"""The /pose_factory/ server routes (nodes/routes.py): the plain functions and the aiohttp handlers,
against a real batch rendered with bpy into a temporary LocalStorage."""
import asyncio
import io
import json
import socket

import numpy as np
import pytest

from nodes import routes as R
from pose_factory.jobs import client as client_mod
from pose_factory.storage import index as index_mod
from pose_factory import settings as settings_mod
from pose_factory.storage.s3 import S3Storage
from pose_factory.storage import LocalStorage, batch_prefix
from tests.s3_support import write_batch

PROJECT = "routes-test"
SPEC = {"project": PROJECT, "render": {"width": 64, "height": 64},
        "cameras": {"type": "orbit", "views": 2}, "subjects": [{"type": "mannequin", "poses": ["a_pose"]}]}


def make_settings(tmp_path, name="cache"):
    return settings_mod.load_settings(overrides={"storage": {"local_root": str(tmp_path / "storage"),
                                                             "cache_root": str(tmp_path / name)}})


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One real batch: 64 px, 1 pose, 2 views, recorded in the local index."""
    from pose_factory.render import render_batch

    tmp = tmp_path_factory.mktemp("routes")
    settings = make_settings(tmp)
    storage = LocalStorage(settings["storage"]["local_root"])
    manifest, rendered = render_batch(SPEC, storage)
    assert rendered
    index_mod.record(settings["storage"]["cache_root"], manifest)
    return {"settings": settings, "storage": storage, "manifest": manifest, "bid": manifest["batch_id"], "tmp": tmp}


def closed_port_storage():
    """S3 storage at a loopback port nobody listens on: every call fails, as an unreachable R2 does."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return S3Storage("bucket", f"http://127.0.0.1:{port}", "key", "secret", max_attempts=1)


def decode(jpeg: bytes) -> np.ndarray:
    from PIL import Image

    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG"
    return np.asarray(im.convert("RGB"), dtype=np.float32)


# --- validation (no render) -----------------------------------------------------------------------
@pytest.mark.parametrize("project", ["", "Upper", "../etc", "a b", "-x", "x" * 65, None, 3])
def test_bad_project_is_400_naming_the_rule(project, tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    for call in (lambda: R.list_project_batches(settings, project),
                 lambda: R.get_manifest(settings, storage, project, "0123456789abcdef"),
                 lambda: R.get_thumbnail(settings, storage, project, "0123456789abcdef"),
                 lambda: R.refresh(settings, storage, {"project": project} if project is not None else {"project": ""})):
        with pytest.raises(R.RouteError) as info:
            call()
        assert info.value.status == 400
        assert info.value.message.startswith("project: got ") and "allowed: 1 to 64 characters" in info.value.message


@pytest.mark.parametrize("bid", ["", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "../../etc/passwd",
                                 "0123456789abcdeg", None])
def test_bad_batch_id_is_400(bid, tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    for fn in (R.get_manifest, R.get_thumbnail):
        with pytest.raises(R.RouteError) as info:
            fn(settings, storage, "demo", bid)
        assert info.value.status == 400
        assert info.value.message == f"batch_id: got {bid!r}, allowed: 16 lowercase hexadecimal characters (0-9, a-f)"


def test_refresh_body_checked(tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    with pytest.raises(R.RouteError, match=r"unknown key\(s\) \['proj'\], allowed: project"):
        R.refresh(settings, storage, {"proj": "x"})
    with pytest.raises(R.RouteError, match="allowed: a JSON object"):
        R.refresh(settings, storage, ["x"])


def _serve(settings, storage, scenario, context=None):
    """Runs scenario(client) against the real aiohttp handlers (context: R.register's)."""
    pytest.importorskip("aiohttp")
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    routes = web.RouteTableDef()
    R.register(routes, context=context or (lambda need_storage: (settings, storage)))
    app = web.Application()
    app.add_routes(routes)

    async def run():
        async with TestClient(TestServer(app)) as c:
            await scenario(c)

    asyncio.run(run())


def test_refresh_with_unknown_names_leaves_the_index_unchanged(tmp_path):
    """Issue 9.8: a refresh indexes only projects storage has; 20 unknown names add nothing."""
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    cache_root = settings["storage"]["cache_root"]
    index_mod.record(cache_root, write_batch(storage, "real", "0123456789abcdef", {("keypoints", 0, 0): b"{}"},
                                             views=1, frames=1))
    before = (tmp_path / "cache" / "index.json").read_bytes()

    async def scenario(c):
        for i in range(20):
            r = await c.post("/pose_factory/refresh", json={"project": f"unknown-{i}"})
            assert r.status == 200 and (await r.json())["batches"] == {f"unknown-{i}": []}
        r = await c.get("/pose_factory/projects")
        assert (await r.json())["projects"] == ["real"]

    _serve(settings, storage, scenario)
    assert (tmp_path / "cache" / "index.json").read_bytes() == before
    assert index_mod.projects(cache_root) == ["real"]


def test_error_bodies_repeat_only_a_short_prefix_of_the_input(tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    long = "x" * 5000

    async def scenario(c):
        for r in (await c.post("/pose_factory/refresh", json={"project": long}),
                  await c.post("/pose_factory/refresh", json={long: 1}),
                  await c.get(f"/pose_factory/projects/{long.upper()}/batches"),
                  await c.get(f"/pose_factory/batches/demo/{long}/manifest"),
                  await c.get(f"/pose_factory/batches/{long.upper()}/0123456789abcdef/thumbnail")):
            body = await r.read()
            assert r.status == 400 and len(body) < 400, body[:400]
            message = json.loads(body)["error"]
            assert "xxxxxxxxxx" in message.lower() and "characters" in message
            assert "x" * 70 not in message.lower()  # a short prefix (and the 64-character slug), never the 5000

    _serve(settings, storage, scenario)
    assert R.echo("abc") == "'abc'" and R.echo(long) == "'" + "x" * 39 + "... (5000 characters)"


def test_empty_index_and_no_jobs(tmp_path):
    settings = make_settings(tmp_path)
    assert R.list_projects(settings) == {"projects": [], "default": settings["project"]}
    assert R.list_project_batches(settings, "nothing-here") == {"project": "nothing-here", "batches": []}
    assert R.list_jobs() == {"jobs": client_mod.active_jobs()}


def test_jobs_lists_running_jobs():
    tracker = client_mod._Tracker("job-1", "0123456789abcdef", "demo", "local", None)
    try:
        tracker({"state": "rendering", "done": 1, "total": 4})
        jobs = R.list_jobs()["jobs"]
        job = next(j for j in jobs if j["job_id"] == "job-1")
        assert (job["state"], job["done"], job["total"], job["batch_id"]) == ("rendering", 1, 4, "0123456789abcdef")
    finally:
        tracker.close()
    assert all(j["job_id"] != "job-1" for j in R.list_jobs()["jobs"])


def test_package_imports_without_comfyui():
    assert R.REGISTERED is False  # no ComfyUI server here: nothing registered, no error


# --- against a rendered batch ---------------------------------------------------------------------
@pytest.mark.blender
def test_projects_and_batches_from_the_index(batch):
    settings, bid = batch["settings"], batch["bid"]
    assert R.list_projects(settings)["projects"] == [PROJECT]
    listed = R.list_project_batches(settings, PROJECT)
    assert [b["batch_id"] for b in listed["batches"]] == [bid]
    entry = listed["batches"][0]
    assert (entry["views"], entry["frames"], entry["width"], entry["height"]) == (2, 1, 64, 64)
    assert "shaded" in entry["passes"] and "openpose" in entry["passes"]
    assert entry["thumbnail"] == f"/pose_factory/batches/{PROJECT}/{bid}/thumbnail"


@pytest.mark.blender
def test_the_batch_browser_reads_only_fields_the_routes_serve(batch):
    """web/js/batch_browser.js shows a batch from list_project_batches ("b.<field>") and its bytes
    from the manifest (entries[].files[].size): every field it reads must be there."""
    import re
    from pathlib import Path

    js = (Path(__file__).resolve().parent.parent / "web" / "js" / "batch_browser.js").read_text(encoding="utf-8")
    read = set(re.findall(r"\bb\.([a-z_]+)", js))
    assert {"batch_id", "thumbnail", "views", "frames", "passes"} <= read, read
    entry = R.list_project_batches(batch["settings"], PROJECT)["batches"][0]
    assert read <= set(entry), f"the browser reads {sorted(read - set(entry))}, not served"
    assert "m.entries.reduce" in js and "f.size" in js
    manifest = R.get_manifest(batch["settings"], batch["storage"], PROJECT, batch["bid"])
    sizes = [f["size"] for e in manifest["entries"] for f in e["files"].values()]
    assert sizes and all(isinstance(n, int) and n > 0 for n in sizes)


@pytest.mark.blender
def test_manifest_from_storage_then_cache_then_404(batch, tmp_path):
    settings, storage, bid = batch["settings"], batch["storage"], batch["bid"]
    assert R.get_manifest(settings, storage, PROJECT, bid) == batch["manifest"]
    with pytest.raises(R.RouteError) as info:
        R.get_manifest(settings, storage, PROJECT, "0" * 16)
    assert info.value.status == 404 and f"{PROJECT}/{'0' * 16} not found" in info.value.message
    with pytest.raises(R.RouteError) as info:  # the batch exists, but in another project
        R.get_manifest(settings, storage, "other", bid)
    assert info.value.status == 404
    # storage unreachable: the download cache's copy, else 502 naming both
    down = closed_port_storage()
    with pytest.raises(R.RouteError) as info:
        R.get_manifest(settings, down, PROJECT, bid)
    assert info.value.status == 502 and "cache has no copy" in info.value.message
    from pose_factory.storage.download import download_batch

    download_batch(storage, PROJECT, bid, settings["storage"]["cache_root"], names=["shaded"])
    assert R.get_manifest(settings, down, PROJECT, bid) == batch["manifest"]


@pytest.mark.blender
def test_thumbnail_is_a_grid_of_frame0_views_and_cached(batch):
    from PIL import Image

    settings, storage, bid, m = batch["settings"], batch["storage"], batch["bid"], batch["manifest"]
    jpeg = R.get_thumbnail(settings, storage, PROJECT, bid)
    grid = decode(jpeg)
    assert grid.shape == (64, 128, 3)  # 2 views side by side, 64 px tiles (never upscaled)
    for view in (0, 1):
        entry = next(e for e in m["entries"] if e["view"] == view and e["frame"] == 0)
        key = batch_prefix(PROJECT, bid) + entry["files"]["shaded"]["key"]
        src = np.asarray(Image.open(io.BytesIO(storage.get_bytes(key))).convert("RGB"), dtype=np.float32)
        tile = grid[:, view * 64:(view + 1) * 64]
        assert np.abs(tile - src).mean() < 4, view  # JPEG of the same picture
        assert tile.std() > 10  # a subject on the background, not a blank tile
    cached = list((batch["tmp"] / "cache" / ".thumbnails" / PROJECT).glob(f"{bid}_shaded_*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == jpeg
    # served from the disk cache: the same bytes without reading the images again
    image_key = batch_prefix(PROJECT, bid) + m["entries"][0]["files"]["shaded"]["key"]
    saved = storage.get_bytes(image_key)
    storage.put_bytes(image_key, b"not a png")
    try:
        assert R.get_thumbnail(settings, storage, PROJECT, bid) == jpeg
    finally:
        storage.put_bytes(image_key, saved)

    # a stored image that is not a picture (and no thumbnail cached yet): 502 naming the pass
    depth_key = batch_prefix(PROJECT, bid) + m["entries"][0]["files"]["depth"]["key"]
    saved = storage.get_bytes(depth_key)
    storage.put_bytes(depth_key, b"not a png")
    try:
        with pytest.raises(R.RouteError) as info:
            R.get_thumbnail(settings, storage, PROJECT, bid, "depth")
        assert info.value.status == 502 and "could not read its depth images" in info.value.message
    finally:
        storage.put_bytes(depth_key, saved)
    assert decode(R.get_thumbnail(settings, storage, PROJECT, bid, "depth")).shape == (64, 128, 3)

    pose = decode(R.get_thumbnail(settings, storage, PROJECT, bid, "openpose"))
    assert pose.shape == (64, 128, 3) and pose.mean() < grid.mean()  # skeleton on black
    # front and back views: the limb colours swap sides, so the two tiles differ
    assert np.abs(pose[:, :64] - pose[:, 64:]).mean() > 2
    with pytest.raises(R.RouteError) as info:
        R.get_thumbnail(settings, storage, PROJECT, bid, "keypoints")
    assert info.value.status == 400 and "allowed: one of this batch's image passes (" in info.value.message
    assert "shaded" in info.value.message
    with pytest.raises(R.RouteError) as info:
        R.get_thumbnail(settings, storage, PROJECT, "f" * 16)
    assert info.value.status == 404


@pytest.mark.blender
def test_refresh_fills_an_empty_index_from_storage(batch):
    settings = make_settings(batch["tmp"], name="fresh-cache")
    storage, bid = batch["storage"], batch["bid"]
    assert R.list_projects(settings)["projects"] == []
    out = R.refresh(settings, storage, {"project": PROJECT})
    assert out["projects"] == [PROJECT]
    assert [b["batch_id"] for b in out["batches"][PROJECT]] == [bid]
    assert out["batches"][PROJECT][0]["views"] == 2
    assert R.refresh(settings, storage, {"project": "empty-one"})["batches"] == {"empty-one": []}
    everything = R.refresh(settings, storage, None)
    assert set(everything["batches"]) == {PROJECT, "empty-one"} or set(everything["batches"]) == {PROJECT}
    assert [b["batch_id"] for b in everything["batches"][PROJECT]] == [bid]
    with pytest.raises(R.RouteError) as info:
        R.refresh(settings, closed_port_storage(), {"project": PROJECT})
    assert info.value.status == 502 and "could not be listed" in info.value.message


# --- the aiohttp handlers ---------------------------------------------------------------------------
@pytest.mark.blender
def test_aiohttp_handlers(batch):
    settings, storage, bid = batch["settings"], batch["storage"], batch["bid"]

    async def scenario(c):
        r = await c.get("/pose_factory/projects")
        assert r.status == 200 and (await r.json())["projects"] == [PROJECT]
        r = await c.get(f"/pose_factory/projects/{PROJECT}/batches")
        body = await r.json()
        assert r.status == 200 and [b["batch_id"] for b in body["batches"]] == [bid]
        r = await c.get(body["batches"][0]["thumbnail"])
        assert r.status == 200 and r.content_type == "image/jpeg"
        assert decode(await r.read()).shape == (64, 128, 3)
        r = await c.get(body["batches"][0]["thumbnail"] + "?pass=nope")
        assert r.status == 400 and "pass: got 'nope'" in (await r.json())["error"]
        r = await c.get(f"/pose_factory/batches/{PROJECT}/{bid}/manifest")
        assert r.status == 200 and (await r.json())["batch_id"] == bid
        r = await c.get(f"/pose_factory/batches/{PROJECT}/{'a' * 16}/manifest")
        assert r.status == 404 and "not found" in (await r.json())["error"]
        r = await c.get(f"/pose_factory/batches/{PROJECT}/NOT-AN-ID/manifest")
        assert r.status == 400 and "allowed: 16 lowercase hexadecimal" in (await r.json())["error"]
        r = await c.get("/pose_factory/projects/Bad Name/batches")
        assert r.status == 400 and (await r.json())["error"].startswith("project: got 'Bad Name'")
        r = await c.get("/pose_factory/jobs")
        assert r.status == 200 and isinstance((await r.json())["jobs"], list)
        r = await c.post("/pose_factory/refresh", json={"project": PROJECT})
        assert r.status == 200 and [b["batch_id"] for b in (await r.json())["batches"][PROJECT]] == [bid]
        r = await c.post("/pose_factory/refresh")  # no body: every project
        assert r.status == 200 and PROJECT in (await r.json())["batches"]
        r = await c.post("/pose_factory/refresh", data=b"{not json")
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]

    _serve(settings, storage, scenario)


def test_aiohttp_settings_error_is_a_json_500(tmp_path):
    def broken(need_storage):
        raise settings_mod.SettingsError("config storage.backend: got 'ftp', allowed: local, r2")

    async def scenario(c):
        r = await c.get("/pose_factory/projects")
        assert r.status == 500
        assert json.loads(await r.text()) == {
            "error": "pose_factory settings: config storage.backend: got 'ftp', allowed: local, r2"}

    _serve(None, None, scenario, context=broken)


# --- projects: create and rename (no render) ----------------------------------------------------------
HOSTILE = ["../x", "a/b", "..", "", "x" * 300, "CON", "ｄｅｆａｕｌｔ", "dеfault", "a\0b"]


def project_app(settings, storage):
    from aiohttp import web

    routes = web.RouteTableDef()
    R.register(routes, context=lambda need_storage: (settings, storage))
    app = web.Application()
    app.add_routes(routes)
    return app


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_project_names_refused_by_the_routes(name, tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    storage.put_bytes("projects/poses/project.json", b"{}")
    before = files_under(tmp_path)
    for call, field in ((lambda: R.create_project(settings, storage, {"name": name}), "name"),
                        (lambda: R.rename_project(settings, storage, "poses", {"to": name}), "to"),
                        (lambda: R.rename_project(settings, storage, name, {"to": "fine"}), "project")):
        with pytest.raises(R.RouteError) as info:
            call()
        assert info.value.status == 400 and info.value.message.startswith(f"{field}: got ")
        assert "allowed: 1 to 64 characters" in info.value.message
    assert files_under(tmp_path) == before


def test_create_and_rename_project_routes(tmp_path):
    pytest.importorskip("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer
    from yarl import URL

    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    app = project_app(settings, storage)
    before = set()

    async def scenario():
        async with TestClient(TestServer(app)) as c:
            r = await c.post("/pose_factory/projects", json={"name": "dance", "display_name": "Dance Set"})
            body = await r.json()
            assert r.status == 200 and body["project"]["display_name"] == "Dance Set" and body["projects"] == ["dance"]
            r = await c.post("/pose_factory/projects", json={"name": "dance"})
            assert r.status == 409 and "already exists" in (await r.json())["error"]
            r = await c.post("/pose_factory/projects", json={"name": "My Dance"})
            err = (await r.json())["error"]
            assert r.status == 400 and "(as a project name: 'my-dance')" in err
            r = await c.post("/pose_factory/projects", json={"nom": "x"})
            assert r.status == 400 and "unknown key" in (await r.json())["error"]
            r = await c.post("/pose_factory/projects", data=b"{nope")
            assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
            before.update(storage.list("projects/dance/"))
            r = await c.post("/pose_factory/projects/dance/rename", json={"to": "ballet"})
            body = await r.json()
            assert r.status == 200 and body["to"] == "ballet" and body["objects"] == 1
            assert "ballet" in body["projects"] and "dance" not in body["projects"]
            r = await c.post("/pose_factory/projects/dance/rename", json={"to": "tap"})
            assert r.status == 404
            for path in ("/pose_factory/projects/%2E%2E/rename", "/pose_factory/projects/a%2Fb/rename",
                         "/pose_factory/projects/CON/rename"):
                r = await c.post(URL(path, encoded=True), json={"to": "x"})  # sent as is, not normalised
                assert r.status == 400 and "allowed: 1 to 64" in (await r.json())["error"], path
            r = await c.post("/pose_factory/projects/ballet/rename", json={"to": "../up"})
            assert r.status == 400 and (await r.json())["error"].startswith("to: got '../up'")

    asyncio.run(scenario())
    assert before == {"projects/dance/project.json"}
    assert storage.list("projects/") == ["projects/ballet/project.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "storage"]  # nothing written elsewhere


def test_loader_batches_route_lists_each_loaders_batches_of_every_project(tmp_path):
    """Issue 21.3: the loaders refresh their dropdown from this route after a render (no page
    reload): every project's batches, newest first, only those the loader can load."""
    settings = make_settings(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    pose = ["depth", "keypoints", "mask", "normal", "openpose", "parts", "seg", "shaded"]
    mesh = ["depth", "depth16", "mask", "normal", "parts", "seg", "shaded"]
    (cache / "index.json").write_text(json.dumps({"version": 1, "projects": {
        "a": {"1111111111111111": {"created_at": "2026-12-01T00:00:00+00:00", "passes": pose}},
        "b": {"2222222222222222": {"created_at": "2026-12-03T00:00:00+00:00", "passes": mesh},
              "3333333333333333": {"created_at": "2026-12-02T00:00:00+00:00", "passes": pose}}}}))
    assert R.loader_batches(settings) == {
        "pose": ["b/3333333333333333", "a/1111111111111111"],
        "depth_normal": ["b/2222222222222222", "b/3333333333333333", "a/1111111111111111"]}
    assert R.refresh(settings, LocalStorage(tmp_path / "storage"), {})["loaders"] == R.loader_batches(settings)
