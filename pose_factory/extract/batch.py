"""The stored extract job (worker job kind ``extract``, DESIGN.md §4): images in storage or at
URLs → MediaPipe's keypoints and skeletons, stored as a batch with a manifest like a pose batch's,
so Load Pose Batch, Pose Keypoints To Image and the Pose batches sidebar read it unchanged.

    spec:  {"kind": "extract", "project": "...",
            "openpose": {"hands": false, "face": false, "sdxl_sticks": false, "visibility_cut": 0.5}}
           (visibility_cut: 0..1, default mapping.MIN_VISIBILITY; docs/extraction.md)
    images: 1..MAX_IMAGES sources, each an http(s) URL (downloaded with mesh/inputs.py's limits:
            size, image type, time) or a storage key under projects/<project>/uploads/;
            PNG, JPEG or WebP, 64..4096 pixels a side, every image the size of the first.

The batch: one view × N frames, image i is frame i (``v00_f0000`` …):
    keypoints/v00_fNNNN.json   the POSE_KEYPOINT frame (OpenPose JSON, pixel coordinates; no
                               people when MediaPipe found nobody)
    openpose/v00_fNNNN.png     its skeleton, drawn by render/openpose.draw_pose as the renders' are
    input/v00_fNNNN.png        the source image
    manifest.json              written last; its "extract" section: the backend and model that ran,
                               found per image, the sources (URLs without their query string)

A photo's camera is unknown: the manifest's one view is a nominal front camera ("nominal": true;
azimuth 0, as Pose From Photo takes a photo's camera to be), for the manifest's format only.
The batch id is a hash of the spec (without the project), the detector's backend and model, and
every image's pixels: the same images with the same settings are the same batch (served again,
not extracted, unless forced), whatever URL or key they came from.

Pure core: the detector (detector.Detector, MediaPipe) is passed in by the worker.
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from .. import imageio
from .. import manifest as manifest_mod
from .. import render as render_mod
from .. import spec as spec_mod
from .. import storage as storage_mod
from ..errors import SpecError
from ..validate import check_bool, check_object
from ..mesh import inputs
from ..render import cameras, openpose
from .mapping import MIN_VISIBILITY, check_visibility_cut, detection_frame

KIND = "extract"
RECIPE_VERSION = 2  # 2: the visibility cut in the spec, points below it kept in our own field
MAX_IMAGES = spec_mod.MAX_POSES  # frames of one batch, as a pose batch's
MAX_TOTAL_PIXELS = 256 << 20  # every image's pixels together, held decoded during the job (768 MB)
OPENPOSE_FLAGS = ("hands", "face", "sdxl_sticks")
WRITERS = 8  # threads encoding and storing files
LOADERS = 8  # sources fetched at a time
# a GPU worker's seconds, for the budget reservation (bench/bench_extract.py measures ~0.02-0.05 s an
# image at 512² on CPU with storage writes; downloads and larger images cost more: kept generous)
MODEL_LOAD_S = 5.0
IMAGE_S = 0.5
# Pose From Photo's fit of one image (inline extract with "fit"): issue 23 saw 3.9 s a person on the
# shared 2-core development machine against the 3.0 s this was; bench/bench_fit.py measured a median
# 1.7 s, at most 3.0 s, there, then 1.1 s, at most 1.9 s, once the fit's rig matrices were made once
# (fit._local_rotation; a loaded machine takes up to about twice that): kept above the slowest seen
FIT_S = 5.0


def normalize(raw: dict) -> dict:
    """The extract spec with every default filled in; SpecError names the field."""
    check_object(raw, "", ("schema_version", "kind", "project", "openpose"))
    if raw.get("kind", KIND) != KIND:
        raise SpecError("kind", f"got {raw.get('kind')!r}", repr(KIND))
    op = raw.get("openpose", {})
    check_object(op, "openpose", (*OPENPOSE_FLAGS, "visibility_cut"))
    spec_mod.check_schema_version(raw.get("schema_version", spec_mod.SPEC_SCHEMA_VERSION))
    try:
        cut = check_visibility_cut(op.get("visibility_cut", MIN_VISIBILITY), "")
    except ValueError as e:
        raise SpecError("openpose.visibility_cut", str(e).removeprefix(": ").split(", allowed: ")[0],
                        "a number from 0 to 1") from None
    return {"kind": KIND, "project": spec_mod.validate_project_name(raw.get("project", "default")),
            "openpose": {**{k: check_bool(op.get(k, False), f"openpose.{k}") for k in OPENPOSE_FLAGS},
                         "visibility_cut": cut}}


def batch_id(spec: dict, detector_id: str, images) -> str:
    h = hashlib.sha256()
    body = {k: v for k, v in spec.items() if k != "project"}
    h.update(spec_mod.canonical_json({"recipe_version": RECIPE_VERSION, "spec": body,
                                      "detector": detector_id}).encode())
    for img in images:
        h.update(str(img.shape).encode())
        h.update(memoryview(np.ascontiguousarray(img)).cast("B"))
    return h.hexdigest()[:16]


def photo_camera(width: int, height: int) -> dict:
    """The manifest's one view (module docstring): a nominal 50 mm front camera 3 m away."""
    loc, target = [0.0, -3.0, 1.0], [0.0, 0.0, 1.0]
    cam = {"index": 0, "name": "photo", "nominal": True, "location": loc,
           "rotation": cameras.look_at_rotation(loc, target), "focal_length": 50.0, "sensor_width": 36.0,
           "orthographic": False, "ortho_scale": None, "shift": [0.0, 0.0], "roll": 0.0}
    return cameras.finish_camera(cam, width, height)


def public_source(src: str) -> str:
    """A source as the manifest records it: a URL without its query and fragment (a presigned
    URL's signature is a credential), a key as it is."""
    return inputs.public_url(src) if src.lower().startswith(("http://", "https://")) else src


def load_images(storage, sources) -> list:
    """The decoded images (RGB uint8), in order, checked: one size for all, MAX_TOTAL_PIXELS
    together. LOADERS sources are fetched at a time (storage and URLs are round trips away); the
    first refusal in the list's order is raised."""
    pool = ThreadPoolExecutor(max_workers=LOADERS)
    try:
        loaded = pool.map(lambda item: inputs.load_source(storage, item[1], f"images[{item[0]}]"),
                          enumerate(sources))
        images, total = [], 0
        for i, img in enumerate(loaded):
            h, w = img.shape[:2]
            if images and img.shape != images[0].shape:
                h0, w0 = images[0].shape[:2]
                raise SpecError(f"images[{i}]", f"{w}x{h} pixels",
                                f"the size of images[0], {w0}x{h0}: one canvas per batch (send other sizes in "
                                "their own job)")
            total += w * h
            if total > MAX_TOTAL_PIXELS:
                raise SpecError("images", f"more than {MAX_TOTAL_PIXELS >> 20} megapixels in all by images[{i}]",
                                f"at most {MAX_TOTAL_PIXELS >> 20} megapixels a job (split the images into "
                                "several jobs)")
            images.append(img)
    finally:  # after a refusal, the sources not started yet are not fetched
        pool.shutdown(wait=True, cancel_futures=True)
    return images


def extract_batch(sources, raw_spec: dict, storage, detector, project: str | None = None, force: bool = False,
                  on_progress=None) -> tuple[dict, bool]:
    """(manifest, made). sources: as inputs.check_sources allows; detector: a detector.Detector made
    with the spec's hands and face. on_progress gets {"state", "done", "total"} (extracting,
    uploading, completed); what it raises stops the job before its manifest is written."""
    report = on_progress or (lambda event: None)  # the caller reports "queued" (the job's first state)
    spec = normalize(raw_spec)
    project = spec_mod.validate_project_name(project or spec["project"])
    spec["project"] = project
    inputs.check_sources(sources, project, "images", MAX_IMAGES)
    n = len(sources)
    t0 = time.perf_counter()
    report({"state": "extracting", "done": 0, "total": n})
    images = load_images(storage, sources)
    timings = {"load": time.perf_counter() - t0}
    bid = batch_id(spec, f"{detector.backend}:{detector.model}", images)
    before = storage_mod.read_manifest(storage, project, bid)
    if before is not None and not force:
        report({"state": "completed", "done": n, "total": n})
        return before, False
    with storage_mod.batch_lock(storage, project, bid):
        done = render_mod.done_meanwhile(storage, project, bid, force, before)
        if done is not None:
            return done, False
        op = spec["openpose"]
        h, w = images[0].shape[:2]
        writer = storage_mod.BatchWriter(storage, project, bid)
        entries, found, t_detect, t1 = [], [], 0.0, time.perf_counter()
        # files are encoded and stored by a few threads while the next image is detected (storage
        # round trips, R2's tens of milliseconds, overlap); the first image's are stored first, so the
        # writer settles the batch's generation folder before any thread writes
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            for i, img in enumerate(images):
                t = time.perf_counter()
                det = detector.detect(img)
                t_detect += time.perf_counter() - t
                frame = detection_frame(det, w, h, op["visibility_cut"])
                files = {"openpose": ("png", lambda f=frame: openpose.draw_pose(
                            f, hands=op["hands"], face=op["face"], sdxl_sticks=op["sdxl_sticks"])),
                         "keypoints": ("json", lambda f=frame: f),
                         "input": ("png", lambda a=img: a)}
                if i == 0:
                    stored = {name: _store_file(writer, name, i, ext, make) for name, (ext, make) in files.items()}
                else:
                    stored = {name: pool.submit(_store_file, writer, name, i, ext, make)
                              for name, (ext, make) in files.items()}
                entries.append({"view": 0, "frame": i, "files": stored})
                found.append(det is not None)
                report({"state": "extracting", "done": i + 1, "total": n})
            report({"state": "uploading", "done": n, "total": n})
            for e in entries:
                e["files"] = {name: f.result() if isinstance(f, Future) else f for name, f in e["files"].items()}
        timings.update(detect=t_detect, draw_and_store=time.perf_counter() - t1 - t_detect)
        manifest = manifest_mod.build_manifest(
            batch_id=bid, project=project, spec=spec, recipe_version=RECIPE_VERSION,
            worker_version=render_mod.WORKER_VERSION, blender_version="", width=w, height=h,
            views=[photo_camera(w, h)], frames=n, entries=entries, timings=timings,
            cost={"estimate_usd": 0.0, "backend": "local"})
        manifest["extract"] = {"method": "mediapipe", "backend": detector.backend, "model": detector.model,
                               "found": found, "sources": [public_source(s) for s in sources]}
        if getattr(detector, "hands_note", ""):
            manifest["extract"]["note"] = detector.hands_note
        writer.commit(manifest)
        report({"state": "completed", "done": n, "total": n})
        return manifest, True


def _store_file(writer, name: str, frame: int, ext: str, make) -> dict:
    """One file of frame `frame` made (make(): an image array or a keypoint frame), encoded and stored."""
    obj = make()
    data = imageio.encode_png(obj) if ext == "png" else json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return writer.add_file(manifest_mod.image_key(name, 0, frame, ext), data)


def estimate_seconds(n_images: int) -> float:
    """A worker's execution seconds for n images, stored or inline (the budget reservation; generous)."""
    return MODEL_LOAD_S + IMAGE_S * n_images
