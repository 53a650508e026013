"""What an untrusted bucket or a tampered cache can do to the loaders and routes (issue 10, points 1
and 6): crafted PNG bombs, manifests and keypoint files stored with their correct hashes in a real
S3-protocol server (moto, through the latency proxy), loaded through the loader nodes' own code path."""
import json
from unittest.mock import ANY
import socket
from pathlib import Path

import pytest

from nodes import routes as R
from nodes.loader_nodes import PoseFactoryDepthNormalLoader, PoseFactoryLoadPoseFromR2
from pose_factory import loading, settings as settings_mod
from pose_factory.storage import download, index
from pose_factory.errors import ManifestError, SpecError, StorageError
from pose_factory.storage.s3 import S3Storage
from pose_factory.storage import MANIFEST_NAME, batch_prefix, manifest_key
from tests.s3_support import (ACCESS_KEY, SECRET_KEY, make_bucket, moto_server, png_bomb, png_bytes,  # noqa: F401
                              proxy, s3_storage, write_batch)

PROJECT = "untrusted"
BID = "0123456789abcdef"
SELECT = dict(views="all", frames="all", order="view_major")


def keypoints(width=64, height=64, body=None) -> bytes:
    frame = {"people": [{"pose_keypoints_2d": body if body is not None else [10.0, 20.0, 1.0] * 18}],
             "canvas_width": width, "canvas_height": height}
    return json.dumps(frame).encode()


@pytest.fixture
def r2(tmp_path, monkeypatch, moto_server, proxy):  # noqa: F811
    """The pack configured for R2 (the S3 server behind the proxy) through $POSE_FACTORY_CONFIG and
    the environment, as a user's ComfyUI is; the cache in tmp_path."""
    bucket = make_bucket(moto_server.url)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"backend": "r2", "cache_root": str(tmp_path / "cache")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    monkeypatch.setenv("POSE_FACTORY_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("POSE_FACTORY_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("POSE_FACTORY_R2_BUCKET", bucket)
    monkeypatch.setenv("CLOUDFLARE_R2_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("CLOUDFLARE_R2_SECRET_ACCESS_KEY", SECRET_KEY)
    settings = settings_mod.load_settings()
    return {"store": s3_storage(proxy.url, bucket), "settings": settings, "tmp": tmp_path,
            "cache": Path(settings["storage"]["cache_root"])}


def load_pose(**kw):
    return PoseFactoryLoadPoseFromR2().load(PROJECT, BID, **SELECT, hands=True, face=True, **kw)["result"]


def load_maps():
    return PoseFactoryDepthNormalLoader().load(PROJECT, BID, **SELECT, depth_range="image",
                                               normal_convention="controlnet", parts="hands")["result"]


# --- 1. image sizes are checked against the manifest before decoding ----------------------------------
@pytest.mark.parametrize("name,bomb,load,says", [
    ("openpose", lambda: png_bomb(6000, 6000), load_pose, "6000x6000 pixels (8-bit RGB), the manifest says 64x64"),
    ("mask", lambda: png_bomb(6000, 6000, colour=0), load_maps, "6000x6000 pixels (8-bit gray), the manifest says 64x64"),
    ("depth16", lambda: png_bomb(64, 64, colour=0, depth=8), load_maps, "is 8-bit gray, allowed: 16-bit gray"),
    ("shaded", lambda: png_bomb(64, 64, colour=2, depth=16), load_pose, "is 16-bit RGB, allowed: 8-bit gray or 8-bit RGB"),
])
def test_a_stored_image_unlike_its_manifest_is_refused_from_its_header(r2, name, bomb, load, says):
    """A bucket writer's PNG bomb, listed in the manifest with its true hash, never reaches the
    decoder: the loader names the file and both sizes (or the format it has and those allowed)."""
    files = {("keypoints", 0, 0): keypoints(), (name, 0, 0): bomb()}
    if name != "openpose":
        files[("openpose", 0, 0)] = png_bytes(1)
    write_batch(r2["store"], PROJECT, BID, files, views=1, frames=1)
    with pytest.raises(StorageError) as info:
        load()
    msg = str(info.value)
    assert f"{name}/v00_f0000.png" in msg and says in msg, msg
    assert type(info.value).__name__ == "ImageHeaderError"


def test_a_manifest_declaring_a_huge_size_is_refused_before_anything_is_fetched_or_allocated(r2):
    """4096x4096 declared with the shaded pass missing: before, the node returned a 4096x4096 black
    image (30000x30000 made it allocate 10.6 GB); now the manifest's size is capped first."""
    write_batch(r2["store"], PROJECT, BID, {("keypoints", 0, 0): keypoints(4096, 4096),
                                            ("openpose", 0, 0): png_bomb(4096, 4096)},
                views=1, frames=1, width=4096, height=4096)
    with pytest.raises(ManifestError, match=r"^width: got 4096, allowed: at most 2048 \(the JobSpec's limit\)"):
        load_pose()
    assert not (r2["cache"] / PROJECT / BID / "openpose").exists()  # nothing downloaded
    manifest = json.loads(r2["store"].get_bytes(manifest_key(PROJECT, BID)))
    manifest["width"] = manifest["height"] = 30000
    with pytest.raises(ManifestError, match="width: got 30000, allowed: at most 2048"):
        loading.check_manifest_limits(manifest)
    # a file bigger than any image of the batch's size can need is refused before it is fetched
    manifest["width"] = manifest["height"] = 64
    manifest["entries"][0]["files"]["openpose"]["size"] = 50_000_000
    with pytest.raises(ManifestError, match=r"^entries\[0\]\.files\.openpose\.size: got 50000000 bytes, "
                                            r"allowed: at most 1081344 for a 64x64 batch"):
        loading.check_manifest_limits(manifest)
    manifest["entries"][0]["files"]["openpose"]["size"] = 1000
    # the configured caps on total work apply to what a loader accepts too
    manifest["width"] = manifest["height"] = 2048
    with pytest.raises(ManifestError, match=r"holds 4\.1943 megapixels, allowed: at most 4 \(limits\.max_megapixels"):
        loading.check_manifest_limits(manifest, {"max_images": 10, "max_megapixels": 4})


def test_thumbnail_route_refuses_a_png_bomb_with_a_4xx(r2):
    """Before: PIL's own bomb check raised DecompressionBombError and the route answered 500."""
    write_batch(r2["store"], PROJECT, BID, {("keypoints", 0, 0): keypoints(),
                                            ("shaded", 0, 0): png_bomb(14000, 14000, colour=0)}, views=1, frames=1)
    status, payload = R._run(lambda need: (r2["settings"], r2["store"]), R.get_thumbnail, True, PROJECT, BID, None)
    assert status == 422, payload
    assert "shaded/v00_f0000.png is 14000x14000 pixels" in payload["error"] and "manifest says 64x64" in payload["error"]


# --- 6. every read path validates ---------------------------------------------------------------------
def closed_port_storage():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return S3Storage("bucket", f"http://127.0.0.1:{port}", "key", "secret", max_attempts=1)


def test_routes_with_storage_down_never_use_an_invalid_cached_manifest(r2):
    """A cached manifest listing an absolute path outside the cache: before, the thumbnail route
    built its picture from that file."""
    manifest = write_batch(r2["store"], PROJECT, BID, {("keypoints", 0, 0): keypoints(),
                                                       ("shaded", 0, 0): png_bytes(2)}, views=1, frames=1)
    outside = r2["tmp"] / "outside.png"
    outside.write_bytes(png_bytes(3))
    manifest["entries"][0]["files"]["shaded"].update(key=str(outside), size=outside.stat().st_size)
    folder = r2["cache"] / PROJECT / BID
    folder.mkdir(parents=True)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    down = closed_port_storage()
    for call in (R.get_manifest, R.get_thumbnail):
        with pytest.raises(R.RouteError) as info:
            call(r2["settings"], down, PROJECT, BID)
        assert info.value.status == 502 and "the cache has no copy" in info.value.message
    assert not (r2["cache"] / R.THUMB_DIR).exists()


def test_a_same_size_change_in_the_cache_is_not_served(r2):
    write_batch(r2["store"], PROJECT, BID, {("keypoints", 0, 0): keypoints(), ("openpose", 0, 0): png_bytes(4)},
                views=1, frames=1)
    stored = json.loads(keypoints())
    assert load_pose()[1] == [stored]
    cached = r2["cache"] / PROJECT / BID / "keypoints" / "v00_f0000.json"
    text = cached.read_text()
    cached.write_text(text.replace("20.0", "30.0"))  # same size, other bytes
    assert cached.stat().st_size == len(text)
    assert load_pose()[1] == [stored]  # fetched again from storage, not the changed copy
    assert cached.read_text() == text
    # the thumbnail route's read of a cached file goes through the same check
    info = {"key": "keypoints/v00_f0000.json", "sha256": download.sha256_file(cached)[0], "size": len(text)}
    cached.write_text(text.replace("20.0", "30.0"))
    assert R._read_file(r2["settings"], r2["store"], PROJECT, BID, info, {}) == text.encode()


@pytest.mark.parametrize("body,width,says", [
    ([1.0, 2.0, 1.0, 4.0, 5.0], 64, "pose_keypoints_2d must have a multiple of 3 numbers"),
    (None, 30000, "canvas_width must be at most 16384"),
    (None, 4000, "canvas 4000x4000, allowed: the batch's 64x64"),
])
def test_stored_keypoints_are_validated(r2, body, width, says):
    write_batch(r2["store"], PROJECT, BID, {("keypoints", 0, 0): keypoints(width, width, body),
                                            ("openpose", 0, 0): png_bytes(5)}, views=1, frames=1)
    with pytest.raises(ManifestError) as info:
        load_pose(**{})
    assert "keypoints/v00_f0000.json" in str(info.value) and says in str(info.value)


def test_a_manifest_of_another_project_is_read_as_its_folders_never_indexed_elsewhere(r2):
    """A batch copied under our project (as a project rename copies it, byte for byte) keeps
    project "other" in its manifest: it loads as our project's, and nothing is ever indexed or
    cached under "other"."""
    manifest = write_batch(r2["store"], "other", BID, {("keypoints", 0, 0): keypoints(),
                                                       ("openpose", 0, 0): png_bytes(6)}, views=1, frames=1)
    for key in r2["store"].list(batch_prefix("other", BID)):  # the same batch copied under our project
        r2["store"].put_bytes(key.replace("/other/", f"/{PROJECT}/"), r2["store"].get_bytes(key))
    for key in r2["store"].list(batch_prefix("other", BID)):
        r2["store"].delete(key)
    assert manifest["project"] == "other"
    load_pose()
    assert list(index.load(r2["cache"])) == [PROJECT]
    assert index.refresh(r2["cache"], r2["store"], [PROJECT, "other"]) == {PROJECT: {BID: ANY}}  # "other" has none
    assert sorted(p.name for p in r2["cache"].iterdir() if p.is_dir()) == [PROJECT]


def test_loader_internals_refuse_bad_project_names_and_the_index_cannot_be_poisoned(r2):
    """Before: fetch_batch accepted project '../../outside', served a manifest planted there and
    recorded that name in index.json (after which POST /refresh answered 400 for everyone)."""
    evil = "../../outside"
    planted = (r2["cache"] / evil / BID).resolve()
    planted.mkdir(parents=True)
    (planted / MANIFEST_NAME).write_text(json.dumps({"batch_id": BID, "project": evil, "entries": []}))
    calls = (lambda: loading.fetch_batch(r2["settings"], evil, BID, ["openpose"], storage=r2["store"]),
             lambda: download.cached_batch(r2["cache"], evil, BID),
             lambda: download.download_batch(r2["store"], evil, BID, r2["cache"]))
    for call in calls:
        with pytest.raises(SpecError, match=r"project: got '../../outside' \(as a project name: 'outside'\), allowed: 1 to 64 characters"):
            call()
    assert index.load(r2["cache"]) == {}
    manifest = write_batch(r2["store"], PROJECT, BID, {("keypoints", 0, 0): keypoints()}, views=1, frames=1,
                           commit=False)
    with pytest.raises(ManifestError, match="^project: got '../../outside'"):
        index.record(r2["cache"], dict(manifest, project=evil))
    # an index file poisoned by hand: bad names, bad ids and non-object summaries are never returned
    good = {"created_at": "2026-01-01T00:00:00+00:00", "views": 1, "frames": 1, "width": 64, "height": 64,
            "passes": ["openpose"]}
    r2["cache"].mkdir(parents=True, exist_ok=True)
    (r2["cache"] / index.INDEX_NAME).write_text(json.dumps({"version": 1, "projects": {
        evil: {BID: good}, "ok": {BID: good, "../x": good, "fedcba9876543210": "text"}, "bad": ["x"]}}))
    assert index.load(r2["cache"]) == {"ok": {BID: good}}
    assert R.list_projects(r2["settings"])["projects"] == ["ok"]
