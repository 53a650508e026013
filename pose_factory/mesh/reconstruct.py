"""The reconstruct job: a checked view set → a backend's mesh → post-processing → GLB/OBJ/FBX,
stored as a batch with a manifest like a pose batch's. Deterministic: the same views and spec give
the same batch id and the same steps (the stored batch is served again unless forced).

    {"kind": "reconstruct", "project": "...", "backend": "visual_hull", "quality_tier": "standard",
     "resolution": null (from the tier) or 32..512, "cameras": "canonical" or [resolved cameras],
     "post": {"smooth": 10, "target_faces": 20000, "uvs": true}, "formats": ["glb", "obj", "fbx"]}

States (DESIGN.md §4, the founding pipeline): queued → generating_images (the canonical view set
is made from the inputs: decoded, checked, masked) → reconstructing_3d → post_processing (and
storing) → completed | failed. The batch: input/vNN_f0000.png and mask/vNN_f0000.png per view, the
mesh files on view 0 (mesh/v00_f0000.glb, mesh_obj/…obj, mesh_fbx/…fbx), and the manifest's
"asset" section naming them."""
from __future__ import annotations

import hashlib
import os
import tempfile
import time

import numpy as np

from .. import imageio
from .. import manifest as manifest_mod
from .. import render as render_mod
from .. import spec as spec_mod
from .. import storage as storage_mod
from ..errors import ManifestError, SpecError
from ..manifest import asset_key  # noqa: F401  (the batch's mesh: part of this module's API)
from ..validate import check_bool, check_choice, check_int, check_object, describe
from . import backends, inputs, postprocess, views

KIND = "reconstruct"
RECIPE_VERSION = 1
STATES = ("queued", "generating_images", "reconstructing_3d", "post_processing", "completed", "failed")
TIERS = {"draft": 96, "standard": 128, "high": 256}
FORMAT_FOLDERS = {"glb": "mesh", "obj": "mesh_obj", "fbx": "mesh_fbx"}


def normalize(raw: dict) -> dict:
    check_object(raw, "", ("kind", "project", "backend", "quality_tier", "resolution", "cameras", "post", "formats"))
    if raw.get("kind", KIND) != KIND:
        raise SpecError("kind", f"got {raw.get('kind')!r}", repr(KIND))
    tier = check_choice(raw.get("quality_tier", "standard"), "quality_tier", tuple(TIERS))
    res = raw.get("resolution")
    res = TIERS[tier] if res is None else check_int(res, "resolution", 32, 512)
    post = {"smooth": 10, "target_faces": 20000, "uvs": True}
    check_object(raw.get("post", {}), "post", tuple(post))
    post.update(raw.get("post", {}))
    formats = raw.get("formats", ["glb"])
    if not isinstance(formats, (list, tuple)) or not formats:
        raise SpecError("formats", f"got {describe(formats)}", "a non-empty list of " + ", ".join(FORMAT_FOLDERS))
    for i, f in enumerate(formats):
        check_choice(f, f"formats[{i}]", tuple(FORMAT_FOLDERS))
    cams = raw.get("cameras", "canonical")
    if cams != "canonical":
        if not isinstance(cams, list) or not 1 <= len(cams) <= spec_mod.MAX_VIEWS:
            raise SpecError("cameras", f"got {describe(cams)}",
                            f'"canonical" or a list of 1 to {spec_mod.MAX_VIEWS} resolved cameras (a manifest\'s views)')
        try:
            for i, c in enumerate(cams):
                manifest_mod.check_view(dict(c, index=i) if isinstance(c, dict) else c, i)
        except ManifestError as e:
            raise SpecError("cameras" + e.field[len("views"):], e.message) from None
        cams = [{k: c[k] for k in ("name", "location", "rotation", "intrinsics", "world_to_camera")} | {"index": i}
                for i, c in enumerate(cams)]
    name = raw.get("backend", "visual_hull")
    if not isinstance(name, str) or name not in backends.installed():
        backends.get(name)  # raises, listing the installed ones
    return {"kind": KIND, "project": spec_mod.validate_project_name(raw.get("project", "default")),
            "backend": name, "quality_tier": tier, "resolution": res, "cameras": cams,
            "post": {"smooth": check_int(post["smooth"], "post.smooth", 0, postprocess.MAX_SMOOTH),
                     "target_faces": check_int(post["target_faces"], "post.target_faces", 0, 2_000_000),
                     "uvs": check_bool(post["uvs"], "post.uvs")},
            "formats": [f for f in FORMAT_FOLDERS if f in formats]}


def batch_id(spec: dict, images, masks) -> str:
    h = hashlib.sha256()
    body = {k: v for k, v in spec.items() if k != "project"}
    h.update(spec_mod.canonical_json({"recipe_version": RECIPE_VERSION, "spec": body}).encode())
    for img, m in zip(images, masks):
        h.update(str(img.shape).encode() + img.tobytes() + np.packbits(m).tobytes())
    return h.hexdigest()[:16]


def resolve_cameras(spec: dict, images) -> list:
    h, w = images[0].shape[:2]
    if spec["cameras"] == "canonical":
        return views.canonical_cameras(len(images), w, h)
    for i, c in enumerate(spec["cameras"]):
        k = c["intrinsics"]
        if (k["width"], k["height"]) != (w, h):
            raise SpecError(f"cameras[{i}].intrinsics", f"a {k['width']}x{k['height']} camera",
                            f"the views' size, {w}x{h}")
    return spec["cameras"]


def reconstruct(images, masks, raw_spec: dict, storage, project: str | None = None, force: bool = False,
                on_progress=None, python: str | None = None) -> tuple[dict, bool]:
    """(manifest, made). images: uint8 (H, W, 3) arrays or sources for inputs.load_image (paths,
    URLs, bytes); masks: None (made from the background) or one per view."""
    report = on_progress or (lambda event: None)  # the caller reports "queued" (the job's first state)
    spec = normalize(raw_spec)
    project = spec_mod.validate_project_name(project or spec["project"])
    spec["project"] = project
    n = len(images)
    report({"state": "generating_images", "done": 0, "total": n})
    images = [img if isinstance(img, np.ndarray) else inputs.load_image(img, f"images[{i}]")
              for i, img in enumerate(images)]
    masks = inputs.check_view_set(images, masks, None if spec["cameras"] == "canonical" else len(spec["cameras"]))
    cams = resolve_cameras(spec, images)
    report({"state": "generating_images", "done": n, "total": n})
    bid = batch_id(spec, images, masks)
    before = storage_mod.read_manifest(storage, project, bid)
    if before is not None and not force:
        report({"state": "completed", "done": 1, "total": 1})
        return before, False
    with storage_mod.batch_lock(storage, project, bid):
        done = render_mod.done_meanwhile(storage, project, bid, force, before)
        if done is not None:
            return done, False
        timings = {}
        t0 = time.perf_counter()
        backend = backends.get(spec["backend"])
        v, f, info = backend.reconstruct(images, masks, cams, resolution=spec["resolution"],
                                         report=lambda d, t: report({"state": "reconstructing_3d", "done": d, "total": t}))
        timings["reconstruct"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        report({"state": "post_processing", "done": 0, "total": len(spec["formats"]) + 1})
        mesh = postprocess.process(v, f, smooth_iterations=spec["post"]["smooth"],
                                   target_faces=spec["post"]["target_faces"], uvs=spec["post"]["uvs"])
        writer = storage_mod.BatchWriter(storage, project, bid)
        entries = []
        with tempfile.TemporaryDirectory(prefix=f"{render_mod.WORK_PREFIX}{os.getpid()}_mesh_") as work:
            for i, (img, m) in enumerate(zip(images, masks)):
                entries.append({"view": i, "frame": 0, "files": {
                    "input": writer.add_file(manifest_mod.image_key("input", i, 0), imageio.encode_png(img)),
                    "mask": writer.add_file(manifest_mod.image_key("mask", i, 0),
                                            imageio.encode_png(np.where(m, 255, 0).astype(np.uint8)))}})
            asset = {"backend": spec["backend"], "vertices": int(len(mesh["vertices"])),
                     "faces": int(len(mesh["faces"])), "raw_faces": int(len(f)), "info": info, "files": {}}
            for j, fmt in enumerate(spec["formats"]):
                folder = FORMAT_FOLDERS[fmt]
                key = manifest_mod.image_key(folder, 0, 0, fmt)
                path = postprocess.export(mesh, fmt, os.path.join(work, f"mesh.{fmt}"), python)
                entries[0]["files"][folder] = writer.add_file(key, path)
                asset["files"][fmt] = folder
                report({"state": "post_processing", "done": j + 1, "total": len(spec["formats"]) + 1})
        timings["post_process"] = time.perf_counter() - t1
        h, w = images[0].shape[:2]
        manifest = manifest_mod.build_manifest(
            batch_id=bid, project=project, spec=spec, recipe_version=RECIPE_VERSION,
            worker_version=render_mod.WORKER_VERSION, blender_version="", width=w, height=h, views=cams, frames=1,
            entries=entries, timings=timings, cost={"estimate_usd": 0.0, "backend": "local"})
        manifest["asset"] = asset
        writer.commit(manifest)
        report({"state": "completed", "done": 1, "total": 1})
        return manifest, True
