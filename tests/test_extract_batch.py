"""The stored extract job (pose_factory/extract/batch.py, worker kind "extract") and the face points.

Real parts only: MediaPipe's own model (the 0.10.21 wheel, offline) on skimage.data.astronaut() (a
photo of a person bundled in scikit-image) and on a plain image; storage in a local folder and in
moto's S3 server; URL sources from an http.server on loopback; the job through the worker's own
request code, the local worker process (the client's local path), and the local v2 server running
the real handler under the real SDK, driven by the unmodified runpod.Endpoint and by our RunPod
client (budget reserved and settled, progress). The batch is loaded back through the loaders' code
and the routes the Pose batches sidebar uses. Face order and placement are checked against
MediaPipe's own face detector; the face drawing against controlnet-aux's (tests/oracles.py)."""
import asyncio
import http.server
import io
import json
import threading

import numpy as np
import pytest

from pose_factory import imageio, loading, settings as settings_mod, storage as storage_mod
from pose_factory.errors import SpecError
from pose_factory.extract import batch
from pose_factory.mesh import inputs
from pose_factory.render import openpose
from tests.s3_support import moto_server  # noqa: F401  (the session's moto S3 server)

PROJECT = "photos"


def execute(job_input, events=None):
    from pod_worker.request import execute as run

    return asyncio.run(run(job_input, (events.append if events is not None else lambda e: None)))


def astronaut():
    return pytest.importorskip("skimage.data").astronaut()


def decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def png(rgb) -> bytes:
    return imageio.encode_png(np.ascontiguousarray(rgb, np.uint8))


def upload(store, rgb) -> str:
    from pose_factory.mesh.client import upload_views

    return upload_views(store, PROJECT, [rgb])[0]


GREY = np.full((512, 512, 3), 128, np.uint8)


# --- spec and sources, refused before anything runs (no model) ----------------------------------------
@pytest.mark.parametrize("job_input, message", [
    ({"spec": {"kind": "extract"}, "project": PROJECT},
     "input.images: got None, allowed: a list of 1 to 256 image sources"),
    ({"spec": {"kind": "extract"}, "project": PROJECT, "images": []}, "input.images: got [], allowed: a list of 1"),
    ({"spec": {"kind": "extract"}, "project": PROJECT, "images": ["ftp://example.com/a.png"]},
     "input.images[0]: got 'ftp://example.com/a.png', allowed: an http(s) URL or a key under projects/photos/uploads/"),
    ({"spec": {"kind": "extract"}, "project": PROJECT, "images": ["projects/other/uploads/a.png"]},
     "input.images[0]: got 'projects/other/uploads/a.png', allowed: an http(s) URL or a key under"),
    ({"spec": {"kind": "extract"}, "project": PROJECT, "images": ["projects/photos/uploads/../../x.png"]},
     "input.images[0]: got 'projects/photos/uploads/../../x.png'"),
    ({"spec": {"kind": "extract", "openpose": {"faces": True}}, "project": PROJECT, "images": ["https://a/b.png"]},
     "input.spec.openpose.faces: unknown key 'faces' (did you mean 'face'?), allowed: keys hands, face"),
    ({"spec": {"kind": "extract", "openpose": {"face": "yes"}}, "project": PROJECT, "images": ["https://a/b.png"]},
     "input.spec.openpose.face: got 'yes', allowed: true or false"),
    ({"spec": {"kind": "extract"}, "project": PROJECT, "images": ["https://a/b.png"], "shard": {"views": [0, 1]}},
     "input.shard: an extract job takes none"),
    ({"spec": {"kind": "extract"}, "project": "Bad Name!", "images": ["https://a/b.png"]}, "input.project:"),
    ({"spec": {"kind": "extracts"}, "project": PROJECT}, "input.spec.kind: got 'extracts', allowed: pose_batch, "
                                                         "reconstruct, extract"),
])
def test_bad_extract_inputs_are_refused_naming_the_field(job_input, message):
    from pod_worker.request import InputError, parse_input

    with pytest.raises(InputError) as e:
        parse_input(job_input)
    assert str(e.value).startswith(message), str(e.value)


def test_a_good_extract_input_parses_and_its_camera_is_a_valid_manifest_view():
    from pod_worker.request import parse_input

    req = parse_input({"spec": {"kind": "extract", "openpose": {"face": True}}, "project": PROJECT,
                       "images": ["https://example.com/a.png", "projects/photos/uploads/ab.png"]})
    assert req["kind"] == "extract" and req["project"] == PROJECT and len(req["images"]) == 2
    assert batch.normalize({"kind": "extract"})["openpose"] == {"hands": False, "face": False, "sdxl_sticks": False,
                                                                 "visibility_cut": 0.3}
    cam = batch.photo_camera(640, 480)
    from pose_factory import manifest as M
    M.check_view(M._camera(cam), 0)
    assert cam["nominal"] is True and cam["intrinsics"]["width"] == 640
    # a presigned URL's signature never reaches the manifest
    assert batch.public_source("https://b.example/k.png?X-Amz-Signature=abc#x") == "https://b.example/k.png"


# --- URL sources from a loopback server ---------------------------------------------------------------
class _Served(http.server.BaseHTTPRequestHandler):
    files: dict = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        item = self.files.get(self.path.split("?")[0])
        if item is None:
            self.send_response(404)
            self.end_headers()
            return
        kind, body = item
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def web():
    """http://127.0.0.1:<port>/… serving a photo, a grey PNG, an HTML page and a big PNG."""
    big = png(np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), np.uint8))  # ~3 MB, incompressible
    _Served.files = {"/astronaut.png": ("image/png", png(astronaut())), "/grey.png": ("image/png", png(GREY)),
                     "/page.html": ("text/html; charset=utf-8", b"<html>not an image</html>"),
                     "/big.png": ("image/png", big)}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Served)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


@pytest.mark.mediapipe
def test_bad_url_sources_give_clear_errors_and_leave_no_batch(web, tmp_path, monkeypatch):
    monkeypatch.setenv("POSE_FACTORY_STORAGE_ROOT", str(tmp_path / "store"))
    monkeypatch.setattr(inputs, "MAX_DOWNLOAD_BYTES", 1 << 20)  # the big PNG is ~3 MB
    job = {"spec": {"kind": "extract"}, "project": PROJECT}
    cases = [
        (f"http://127.0.0.1:{closed_port()}/a.png", "could not download", "ConnectionError", "a reachable http(s) URL"),
        (web.base + "/page.html", "serves 'text/html'", "allowed: an image (image/png, image/jpeg, image/webp)"),
        (web.base + "/big.png", f"bytes, allowed: at most {1 << 20} bytes"),
        (web.base + "/missing.png", "answered HTTP 404"),
    ]
    for url, *parts in cases:
        out = execute(dict(job, images=[web.base + "/astronaut.png", url]))
        assert set(out) == {"error"}, out
        assert out["error"].startswith("extract failed: SpecError: images[1]: "), out
        for p in parts:
            assert p in out["error"], (p, out["error"])
    store = storage_mod.LocalStorage(tmp_path / "store")
    assert storage_mod.list_batches(store, PROJECT) == [] and not store.list(f"projects/{PROJECT}/batches/")
    # images of two sizes cannot share a canvas
    out = execute(dict(job, images=[web.base + "/astronaut.png", web.base + "/big.png"]))
    assert "images[1]" in out["error"]  # over the (patched) byte limit, checked first
    monkeypatch.setattr(inputs, "MAX_DOWNLOAD_BYTES", 64 << 20)
    out = execute(dict(job, images=[web.base + "/astronaut.png", web.base + "/big.png"]))
    assert out["error"].endswith("images[1]: 1024x1024 pixels, allowed: the size of images[0], 512x512: one canvas "
                                 "per batch (send other sizes in their own job)"), out


# --- the stored batch: local folder, loaded back ---------------------------------------------------------
def _settings(tmp_path, store_root):
    return settings_mod.load_settings(overrides={
        "storage": {"local_root": str(store_root), "cache_root": str(tmp_path / "cache")},
        "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}})


def _check_batch(store, manifest, images, settings):
    """The stored batch against the inline extract of the same images and through the loaders."""
    n = len(images)
    assert manifest["frames"] == n and len(manifest["views"]) == 1 and manifest["views"][0]["nominal"]
    assert [e["frame"] for e in manifest["entries"]] == list(range(n))
    assert set(manifest["entries"][0]["files"]) == {"openpose", "keypoints", "input"}
    # the same keypoints as the inline extract (the Extract Pose node's path) of the same images
    inline = execute({"extract": {"images": [__import__("base64").b64encode(png(i)).decode() for i in images],
                                  "hands": False, "face": True}})
    prefix = storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    for e, want, img in zip(manifest["entries"], inline["frames"], images):
        got = json.loads(store.get_bytes(prefix + e["files"]["keypoints"]["key"]))
        assert got == json.loads(json.dumps(want))
        assert np.array_equal(decode(store.get_bytes(prefix + e["files"]["input"]["key"])), img)
        skel = decode(store.get_bytes(prefix + e["files"]["openpose"]["key"]))
        assert np.array_equal(skel, openpose.draw_pose(got, hands=False, face=True))
    assert manifest["extract"]["found"] == inline["found"]
    # Load Pose Batch's code: the stored skeletons as they are, and redrawn from the keypoints
    m, folder = loading.fetch_batch(settings, manifest["project"], manifest["batch_id"], loading.POSE_PASSES,
                                    storage=store)
    entries = loading.select_entries(m, "all", "all")
    pose = loading.load_pose(folder, m, entries, hands=False, face=True)
    assert pose["openpose"].shape == (n, 512, 512, 3) and pose["shaded"] is None
    assert np.array_equal(pose["openpose"][0], decode(store.get_bytes(
        prefix + manifest["entries"][0]["files"]["openpose"]["key"])))
    no_face = loading.load_pose(folder, m, entries, hands=False, face=False)["openpose"]
    assert not np.array_equal(no_face[0], pose["openpose"][0])  # redrawn without the face's dots
    return pose


@pytest.mark.mediapipe
def test_stored_extract_from_a_url_and_a_key_in_a_local_folder_loads_back(web, tmp_path, monkeypatch):
    from nodes import routes

    root = tmp_path / "store"
    monkeypatch.setenv("POSE_FACTORY_STORAGE_ROOT", str(root))
    store = storage_mod.LocalStorage(root)
    key = upload(store, GREY)
    job = {"spec": {"kind": "extract", "openpose": {"face": True}}, "project": PROJECT,
           "images": [web.base + "/astronaut.png?token=secret", key]}
    events = []
    out = execute(job, events)
    assert "error" not in out, out
    assert out["made"] and out["found"] == [True, False] and out["backend"] == "solutions"
    states = [e["state"] for e in events]
    assert states[0] == "queued" and states[-1] == "completed" and "extracting" in states and "uploading" in states
    assert {"state": "extracting", "done": 2, "total": 2} in events
    manifest = storage_mod.read_manifest(store, PROJECT, out["batch_id"])
    assert manifest["extract"]["sources"] == [web.base + "/astronaut.png", key]  # no query: no token stored
    assert "secret" not in store.get_bytes(storage_mod.manifest_key(PROJECT, out["batch_id"])).decode()
    gone = execute(dict(job, images=[web.base + "/gone.png?X-Amz-Signature=secret"]))
    assert "answered HTTP 404" in gone["error"] and "secret" not in gone["error"]  # nor in a message
    settings = _settings(tmp_path, root)
    pose = _check_batch(store, manifest, [astronaut(), GREY], settings)
    assert len(pose["keypoints"][0]["people"][0]["face_keypoints_2d"]) == 210
    assert pose["keypoints"][1]["people"] == [] and not pose["openpose"][1].any()
    # the Pose batches sidebar: listed from the local index, with a thumbnail
    listed = routes.list_project_batches(settings, PROJECT)["batches"]
    assert [b["batch_id"] for b in listed] == [out["batch_id"]] and listed[0]["frames"] == 2
    thumb = routes.get_thumbnail(settings, store, PROJECT, out["batch_id"])
    assert thumb[:3] == b"\xff\xd8\xff"
    # Load Pose Batch itself (as ComfyUI calls it), the batch picked as the sidebar puts it in
    from tests.test_nodes import load_pack_like_comfyui

    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(root), "cache_root": str(tmp_path / "cache")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    loader = load_pack_like_comfyui().NODE_CLASS_MAPPINGS["PoseFactoryLoadPoseFromR2"]
    assert loader.VALIDATE_INPUTS(batch_id=f"{PROJECT}/{out['batch_id']}") is True
    got = loader().load(project=PROJECT, batch_id=out["batch_id"], views="all", frames="all", order="view_major",
                        hands=False, face=True)["result"]
    assert tuple(got[0].shape) == (2, 512, 512, 3) and got[1] == pose["keypoints"]
    assert np.array_equal(np.rint(got[0].numpy() * 255).astype(np.uint8), pose["openpose"])
    assert float(got[2].max()) == 0.0  # no shaded pass: black
    # the same pixels from another source: the same batch, served again; force makes it anew
    again = execute(dict(job, images=[upload(store, astronaut()), web.base + "/grey.png"]))
    assert again["batch_id"] == out["batch_id"] and not again["made"]
    forced = execute(dict(job, force=True))
    assert forced["made"] and forced["batch_id"] == out["batch_id"]
    assert storage_mod.read_manifest(store, PROJECT, out["batch_id"])["created_at"] >= manifest["created_at"]
    # other settings, another batch
    other = execute(dict(job, spec={"kind": "extract"}))
    assert other["batch_id"] != out["batch_id"]


@pytest.mark.mediapipe
def test_stored_extract_into_moto_s3_loads_back(tmp_path, moto_server):
    from pose_factory.extract.detector import Detector
    from tests.s3_support import make_bucket, s3_storage

    store = s3_storage(moto_server.url, make_bucket(moto_server.url))
    keys = [upload(store, astronaut()), upload(store, GREY)]
    det = Detector(face=True)
    try:
        manifest, made = batch.extract_batch(keys, {"kind": "extract", "openpose": {"face": True}}, store, det,
                                             project=PROJECT)
    finally:
        det.close()
    assert made and storage_mod.read_manifest(store, PROJECT, manifest["batch_id"]) == manifest
    assert store.list(storage_mod.manifest_key(PROJECT, manifest["batch_id"]))  # in the bucket
    settings = _settings(tmp_path, tmp_path / "unused")
    _check_batch(store, manifest, [astronaut(), GREY], settings)


@pytest.mark.mediapipe
def test_a_cancelled_extract_writes_no_manifest(tmp_path):
    from pose_factory.extract.detector import Detector

    store = storage_mod.LocalStorage(tmp_path / "store")
    keys = [upload(store, astronaut())] * 3

    class Stop(Exception):
        pass

    def progress(e):
        if e["state"] == "extracting" and e["done"] == 2:
            raise Stop()

    det = Detector()
    try:
        with pytest.raises(Stop):
            batch.extract_batch(keys, {"kind": "extract"}, store, det, project=PROJECT, on_progress=progress)
    finally:
        det.close()
    assert storage_mod.list_batches(store, PROJECT) == []


# --- the face: 468 (+10 iris) → OpenPose's 70 --------------------------------------------------------------
@pytest.mark.mediapipe
def test_face_points_on_a_photo_are_inside_mediapipes_face_box_and_in_anatomical_order():
    import mediapipe as mp

    from oracles import controlnet_aux_util, oracle_draw
    from pose_factory.extract import detection_frame
    from pose_factory.extract.detector import Detector

    img = astronaut()
    h, w = img.shape[:2]
    det = Detector(face=True)
    try:
        frame = detection_frame(det.detect(img), w, h)
    finally:
        det.close()
    face = np.array(frame["people"][0]["face_keypoints_2d"]).reshape(70, 3)
    assert (face[:, 2] == 1.0).all()
    with mp.solutions.face_detection.FaceDetection(model_selection=0) as fd:
        found = fd.process(img).detections
    assert len(found) == 1
    box = found[0].location_data.relative_bounding_box
    x0, y0, x1, y1 = box.xmin * w, box.ymin * h, (box.xmin + box.width) * w, (box.ymin + box.height) * h
    pad = 0.05 * box.width * w  # the detector's box is tight: the jaw's ends sit on its sides
    assert (face[:, 0] >= x0 - pad).all() and (face[:, 0] <= x1 + pad).all()
    assert (face[:, 1] >= y0 - pad).all() and (face[:, 1] <= y1 + pad).all()
    assert np.ptp(face[:, 0]) > 0.8 * box.width * w  # the points span the face, not one spot
    right_eye, left_eye = face[36:42, :2].mean(0), face[42:48, :2].mean(0)
    nose_tip, chin, mouth = face[30, :2], face[8, :2], face[48:60, :2].mean(0)
    assert chin[1] > mouth[1] > nose_tip[1] > max(right_eye[1], left_eye[1]) > face[17:27, 1].mean()
    assert right_eye[0] < nose_tip[0] < left_eye[0]  # the subject's right eye on the image's left
    assert face[0, 0] < face[8, 0] < face[16, 0] and face[8, 1] == face[:17, 1].max()  # jaw: right ear, chin, left
    assert face[36, 0] < face[39, 0] < face[42, 0] < face[45, 0]  # eye corners left to right
    assert face[48, 0] < face[51, 0] < face[54, 0] and face[51, 1] < face[57, 1]  # mouth corners, upper above lower
    for pupil, eye in ((68, slice(36, 42)), (69, slice(42, 48))):
        e = face[eye, :2]
        assert (e.min(0) <= face[pupil, :2]).all() and (face[pupil, :2] <= e.max(0)).all()
    # drawn as controlnet-aux draws a face: its own drawing of our frame is ours
    ours = openpose.draw_pose(frame, hands=False, face=True)
    util = controlnet_aux_util()
    assert np.array_equal(oracle_draw(util, frame, hands=False, face=True), ours)
    white = np.all(ours == 255, axis=-1)
    assert sum(white[int(y), int(x)] for x, y in face[:, :2]) == 70  # every point a white dot
    assert not np.array_equal(ours, openpose.draw_pose(frame, hands=False, face=False))


# --- clients: the local worker, and RunPod through the v2 server ---------------------------------------
@pytest.mark.mediapipe
def test_extract_through_the_local_worker_client_and_the_face_switch_of_the_node(tmp_path, monkeypatch):
    import sys

    import torch

    from pose_factory.extract.client import request_extract
    from pose_factory.jobs import client
    from tests.test_nodes import load_pack_like_comfyui

    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # any import of it in this process fails
    settings = settings_mod.load_settings()
    try:
        events = []
        res = request_extract([astronaut(), GREY], {"openpose": {"face": True}}, project=PROJECT, backend="local",
                              settings=settings, on_progress=events.append)
        assert res.rendered and res.backend == "local" and res.manifest["extract"]["found"] == [True, False]
        assert [e["state"] for e in events][-1] == "completed" and "extracting" in [e["state"] for e in events]
        store = storage_mod.LocalStorage(tmp_path / "store")
        assert storage_mod.read_manifest(store, PROJECT, res.batch_id) == res.manifest
        assert loading.fetch_batch(settings, PROJECT, res.batch_id, ("keypoints",))[0]["batch_id"] == res.batch_id
        again = request_extract([astronaut(), GREY], {"openpose": {"face": True}}, project=PROJECT, backend="local",
                                settings=settings)
        assert not again.rendered and again.batch_id == res.batch_id
        with pytest.raises(SpecError, match=r"images\[0\]: got ndarray, allowed: an RGB uint8 array"):
            request_extract([GREY.astype(np.float32)], project=PROJECT, backend="local", settings=settings)

        node = load_pack_like_comfyui().NODE_CLASS_MAPPINGS["PoseFactoryExtractPose"]
        assert "face" in node.INPUT_TYPES()["optional"]
        image = torch.from_numpy(astronaut()[None].astype(np.float32) / 255)
        skel, frames, info = node().extract(image, False, False, face=True)
        assert "found in 1 of 1 images; a face in 1" in info
        face = frames[0]["people"][0]["face_keypoints_2d"]
        assert len(face) == 210 and all(c == 1.0 for c in face[2::3])
        drawn = np.rint(skel[0].numpy() * 255).astype(np.uint8)
        assert np.array_equal(drawn, openpose.draw_pose(frames[0], hands=False, face=True))
        skel0, frames0, _ = node().extract(image, False, False)  # the default: no face, as before
        assert frames0[0]["people"][0]["face_keypoints_2d"] == []
        assert not np.array_equal(skel0[0].numpy(), skel[0].numpy())
    finally:
        client.close_clients()


API_KEY = "extract-key"


@pytest.mark.mediapipe
def test_extract_and_posture_through_the_v2_server_with_runpod_endpoint_and_our_client(tmp_path, monkeypatch):
    runpod = pytest.importorskip("runpod")
    import base64

    from pose_factory.extract.client import request_extract
    from pose_factory.jobs import budget, client
    from tests.runpod_v2_server import RunPodV2Server

    root = tmp_path / "store"
    store = storage_mod.LocalStorage(root)
    key = upload(store, astronaut())
    with RunPodV2Server(API_KEY, env={"POSE_FACTORY_STORAGE_ROOT": str(root)}, workers=1,
                        worker_log=tmp_path / "worker") as srv:
        # the unmodified SDK: a stored extract job
        monkeypatch.setattr(runpod, "api_key", API_KEY)
        monkeypatch.setattr(runpod, "endpoint_url_base", srv.url_base)
        ep = runpod.Endpoint(srv.endpoint_id)
        out = ep.run({"spec": {"kind": "extract", "openpose": {"face": True}}, "project": PROJECT,
                      "images": [key]}).output(timeout=180)
        assert out["made"] and out["found"] == [True], out
        manifest = storage_mod.read_manifest(store, PROJECT, out["batch_id"])
        assert manifest["extract"]["backend"] == "solutions" and manifest["frames"] == 1
        bad = ep.run({"spec": {"kind": "extract"}, "project": PROJECT, "images": ["projects/photos/uploads/none.png"]})
        assert bad.status() in ("IN_QUEUE", "IN_PROGRESS", "FAILED")
        bad.output(timeout=60)
        assert bad.status() == "FAILED"

        # our RunPod client: budget reserved and settled, progress forwarded
        over = {"storage": {"local_root": str(root), "cache_root": str(tmp_path / "cache")},
                "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")},
                "runpod": {"poll_interval_s": 0.2, "url_base": srv.url_base}}
        s = settings_mod.load_settings(overrides=over)
        env = {"RUNPOD_API_KEY": API_KEY, "RUNPOD_ENDPOINT_ID": srv.endpoint_id}
        try:
            events = []
            res = request_extract([astronaut()], {"openpose": {"face": True}}, project=PROJECT, backend="runpod",
                                  settings=s, env=env, on_progress=events.append, force=True)
            assert res.backend == "runpod" and res.rendered and res.batch_id == out["batch_id"] and res.cost_usd > 0
            assert events[0]["state"] == "queued" and all(e["state"] in client.STATES for e in events)
            ledger = budget.Ledger(s["budget"]["ledger_path"])
            kinds = [(e["job_key"].split(":")[0], e["state"]) for e in ledger.entries()]
            assert kinds == [("extract", "settled")], kinds

            b64 = base64.b64encode(png(astronaut())).decode()
            events = []
            posture = client.run_worker_job({"front": b64, "side": b64}, backend="runpod", settings=s, env=env,
                                            on_progress=events.append)
            assert posture["status"] == "success" and set(posture["data"]) == {"front_view", "side_view"}
            assert all(e["state"] in client.STATES for e in events)
            inline = client.run_worker_job({"extract": {"images": [b64], "face": True}}, backend="runpod",
                                           settings=s, env=env)
            assert inline["found"] == [True] and len(inline["frames"][0]["people"][0]["face_keypoints_2d"]) == 210
            bad_posture = client.run_worker_job({"front": b64, "side": "not base64!"}, backend="runpod", settings=s,
                                                env=env)
            assert bad_posture["status"] == "error"  # the contract's answer, not a failure
            kinds = sorted((e["job_key"].split(":")[0], e["state"]) for e in ledger.entries())
            assert kinds == [("extract", "settled")] * 2 + [("posture", "settled")] * 2, kinds
            # over RunPod's /run body limit: refused before anything is reserved or sent
            n_runs = len([p for m, p in list(srv.requests) if m == "POST" and p.endswith("/run")])
            with pytest.raises(SpecError, match="at most 10485760 bytes on RunPod's /run"):
                client.run_worker_job({"extract": {"images": ["A" * (11 << 20)]}}, backend="runpod", settings=s,
                                      env=env)
            assert len([p for m, p in list(srv.requests) if m == "POST" and p.endswith("/run")]) == n_runs
            assert len(ledger.entries()) == 4
            # the budget refuses before submitting
            tight = settings_mod.load_settings(overrides=dict(over, budget={"ledger_path": str(tmp_path / "l2.sqlite"),
                                                                            "monthly_gpu_limit_usd": 0.0001}))
            client.close_clients()
            with pytest.raises(budget.BudgetExceeded):
                client.run_worker_job({"front": b64, "side": b64}, backend="runpod", settings=tight, env=env)
            assert len([p for m, p in list(srv.requests) if m == "POST" and p.endswith("/run")]) == n_runs
        finally:
            client.close_clients()


@pytest.mark.mediapipe
def test_a_small_face_is_found_through_the_head_crop_and_mapped_back_to_the_photo():
    """The astronaut shrunk into a larger grey canvas (face 23 to 36 pixels wide, too small for
    FaceMesh's own detector on the whole canvas): the face is still found, and its points, mapped
    back to the full-size photo, land where the full-size detection puts them."""
    import cv2
    import mediapipe as mp

    from pose_factory.extract import detection_frame
    from pose_factory.extract.detector import Detector

    img = astronaut()
    det = Detector(face=True)
    try:
        full = np.array(detection_frame(det.detect(img), 512, 512)["people"][0]["face_keypoints_2d"]).reshape(70, 3)
        width = np.ptp(full[:, 0])
        for side, (ox, oy) in ((200, (150, 40)), (128, (40, 200))):
            canvas = np.full((512, 512, 3), 128, np.uint8)
            canvas[oy:oy + side, ox:ox + side] = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as alone:
                assert not alone.process(canvas).multi_face_landmarks  # why the crop is there
            small = np.array(detection_frame(det.detect(canvas), 512, 512)["people"][0]["face_keypoints_2d"])
            small = small.reshape(70, 3)
            assert (small[:, 2] == 1.0).all()
            back = (small[:, :2] + 0.5 - [ox, oy]) * 512 / side - 0.5  # pixel centres, scaled back
            err = np.linalg.norm(back - full[:, :2], axis=1)
            assert np.median(err) < 0.03 * width and err.max() < 0.08 * width, (side, np.median(err), err.max())
    finally:
        det.close()


@pytest.mark.mediapipe
def test_draw_landmarks_script_draws_the_face(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    photo, out = tmp_path / "astronaut.png", tmp_path / "out.png"
    photo.write_bytes(png(astronaut()))
    script = Path(__file__).resolve().parent.parent / "scripts" / "draw_landmarks.py"
    runs = {}
    for flags in ((), ("--face",)):
        r = subprocess.run([sys.executable, str(script), str(photo), str(out), *flags], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[flags] = (r.stdout, decode(out.read_bytes()))
    assert "70 face points" in runs[("--face",)][0] and "face points" not in runs[()][0]
    changed = np.any(runs[("--face",)][1] != runs[()][1], axis=-1)
    assert changed.sum() > 70 * 9  # 70 dots of radius 3 (some overlap), over the photo
