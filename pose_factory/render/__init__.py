"""Renders a JobSpec into a batch in storage: one Blender process per batch, in the worker
environment (started and read by worker_process, whose names are re-exported here), then every
file into storage and the manifest last (upload_result, shared with the mesh room's renders)."""
from __future__ import annotations

import os
import time

from . import passes
from .. import imageio
from .. import manifest as manifest_mod
from .. import spec as spec_mod
from .. import storage as storage_mod
from ..worker_process import (LEFTOVER_AGE_S, LEFTOVER_PREFIXES, REPO_ROOT, WORK_PREFIX,  # noqa: F401
                              RenderError, end_child, remove_leftovers, run_blender, run_blender_async,
                              spawn_standby, work_folder, worker_python)

WORKER_VERSION = "0.1.0"


def prepare(raw_spec: dict, project: str | None):
    """(normalized spec, project, batch id)."""
    spec = spec_mod.normalize_spec(raw_spec)
    project = spec_mod.validate_project_name(project or spec["project"])
    spec["project"] = project
    return spec, project, spec_mod.batch_id(spec)


def blender_spec(spec: dict, storage, project: str, work: str) -> dict:
    """The spec the Blender child reads: with props, each one's mesh fetched from storage, checked
    and placed in the world as an .npz in the work folder (``prop_files``); with rig subjects, each
    rig's file fetched into the work folder and imported once by Blender with a time limit
    (``rig_files``: a path per subject, None for a mannequin); else spec itself."""
    out = spec
    if spec.get("props"):
        from ..mesh import props

        out = dict(out, prop_files=props.prepare_files(spec, storage, project, os.path.join(work, "props")))
    if any(s.get("type") == "rig" for s in spec["subjects"]):
        from .. import rigs

        out = dict(out, rig_files=rigs.prepare_files(spec, storage, project, os.path.join(work, "rigs")))
    return out


def _upload_files(project: str, bid: str, result: dict, storage, on_progress, stop=None) -> list:
    """Every rendered file into storage; returns the manifest entries. stop (a threading.Event)
    set aborts, so the batch stays without a manifest."""
    total = len(result["entries"])
    if on_progress:
        on_progress({"state": "uploading", "done": 0, "total": total})
    writer = storage_mod.BatchWriter(storage, project, bid)
    entries = []
    for i, e in enumerate(result["entries"]):
        if stop is not None and stop.is_set():
            raise RenderError("cancelled while uploading")
        files = {name: writer.add_file(key, os.path.join(result["files_dir"], key))
                 for name, key in e["files"].items()}
        entries.append({"view": e["view"], "frame": e["frame"], "files": files,
                        **({"camera_shift": e["camera_shift"]} if "camera_shift" in e else {})})
        if on_progress:
            on_progress({"state": "uploading", "done": i + 1, "total": total})
    return entries


SHARD_KEYS = ("blender_version", "cameras", "frames", "joints_3d", "depth_range", "timings")
OPTIONAL_SHARD_KEYS = ("rig_reports",)  # only when a subject is a rig


def write_shard_depth(storage, project: str, bid: str, parts: list) -> list:
    """The 8-bit depth of a batch rendered in shards with one depth range for the batch: each
    shard measured its own range and kept its metric depth (passes.DEPTH_F32); here the ranges
    are merged and every image's 8-bit depth is written with it (the same pixels one worker
    writes for the whole batch), and the metric depth files are removed. Returns the parts
    with their depth files and the batch's range."""
    depth_range = _merged_depth_range(parts)
    near_far = (depth_range["near"], depth_range["far"]) if depth_range else (0.0, 1.0)
    writer = storage_mod.BatchWriter(storage, project, bid)
    out = []
    for p in parts:
        entries = []
        for e in p["entries"]:
            files = dict(e["files"])
            f32 = files.pop(passes.DEPTH_F32, None)
            if f32 is not None:
                key = writer.prefix + f32["key"]
                u8 = passes.depth_u8_from_f32_bytes(storage.get_bytes(key), *near_far)
                files["depth"] = writer.add_file(manifest_mod.image_key("depth", e["view"], e["frame"]),
                                                 imageio.encode_png(u8))
                storage.delete(key)
            entries.append(dict(e, files=files))
        out.append(dict(p, entries=entries, depth_range=depth_range))
    return out


def build_batch_manifest(spec: dict, project: str, bid: str, parts: list, timings: dict, cost: dict,
                         recipe_version: int = spec_mod.RECIPE_VERSION) -> dict:
    """The manifest of a batch from the renders of its views: one part for a whole batch, or one
    per shard (each {"views": [start, stop], "entries", and SHARD_KEYS}). The shards must cover
    every view once and agree on what they share (their depth ranges are merged, see
    write_shard_depth); entries come out frame-major, then view."""
    first = parts[0]
    n_views = len(first["cameras"])
    covered = sorted(v for p in parts for v in range(*p["views"]))
    if covered != list(range(n_views)):
        raise RenderError(f"shards cover views {covered}, the batch has views 0..{n_views - 1}")
    for p in parts[1:]:
        for key in ("cameras", "frames", "joints_3d", "blender_version", *OPTIONAL_SHARD_KEYS):
            if p.get(key) != first.get(key):
                raise RenderError(f"shards disagree on {key}: views {first['views']} vs {p['views']}")
    entries = sorted((e for p in parts for e in p["entries"]), key=lambda e: (e["frame"], e["view"]))
    return manifest_mod.build_manifest(
        batch_id=bid, project=project, spec=spec, recipe_version=recipe_version,
        worker_version=WORKER_VERSION, blender_version=first["blender_version"],
        width=spec["render"]["width"], height=spec["render"]["height"], views=first["cameras"],
        frames=first["frames"], entries=entries, joints_3d=first["joints_3d"],
        depth_range=_merged_depth_range(parts), timings=timings, cost=cost, rig_reports=first.get("rig_reports"))


def _merged_depth_range(parts: list) -> dict | None:
    merged = passes.merge_ranges((p["depth_range"]["near"], p["depth_range"]["far"]) if p["depth_range"] else None
                                 for p in parts)
    return {"near": merged[0], "far": merged[1]} if merged else None


def commit_batch(storage, manifest: dict) -> dict:
    """Checks every listed file is stored with its hash, then writes the manifest, last."""
    return storage_mod.BatchWriter(storage, manifest["project"], manifest["batch_id"]).commit(manifest)


def _shard_part(project: str, bid: str, result: dict, entries: list) -> dict:
    part = {k: result[k] for k in SHARD_KEYS}
    part.update({k: result[k] for k in OPTIONAL_SHARD_KEYS if k in result})
    part["batch_id"], part["project"] = bid, project
    part["views"], part["entries"] = result.get("views") or [0, len(result["cameras"])], entries
    return part


def upload_result(spec: dict, project: str, bid: str, result: dict, storage, on_progress, t0: float,
                  stop=None, views=None, recipe_version: int = spec_mod.RECIPE_VERSION) -> dict:
    """A render's result (run_blender's: its files and entries) into storage, every file, then the
    manifest last; a shard (views set) returns its part instead of a manifest, for the client to
    merge. stop (a threading.Event) set aborts before the manifest is written."""
    entries = _upload_files(project, bid, result, storage, on_progress, stop)
    part = _shard_part(project, bid, result, entries)
    if views is not None:
        return part
    timings = dict(result["timings"], wall=time.perf_counter() - t0)
    manifest = build_batch_manifest(spec, project, bid, [part], timings, {"estimate_usd": 0.0, "backend": "local"},
                                    recipe_version)
    if stop is not None and stop.is_set():
        raise RenderError("cancelled while uploading")
    commit_batch(storage, manifest)
    if on_progress:
        on_progress({"state": "completed", "done": len(entries), "total": len(entries)})
    return manifest


def done_meanwhile(storage, project: str, bid: str, force: bool, before):
    """Under the batch lock: the batch's manifest when it needs no render after all (complete,
    and for force, rendered afresh by another process while this one waited), else None. Checks
    the storage can be written before anything is rendered for it."""
    now = storage_mod.read_manifest(storage, project, bid)
    if now is not None and (not force or now != before):
        return now
    storage.check()
    return None


def render_batch(raw_spec: dict, storage, project: str | None = None, force: bool = False,
                 on_progress=None, python: str | None = None) -> tuple[dict, bool]:
    """Returns (manifest, rendered). An identical spec already in storage is not rendered
    again unless force is set. One render of a batch at a time on this machine: a second
    request waits for the first and shares its batch (rendered False)."""
    spec, project, bid = prepare(raw_spec, project)
    before = storage_mod.read_manifest(storage, project, bid)
    if before is not None and not force:
        return before, False
    with storage_mod.batch_lock(storage, project, bid):
        done = done_meanwhile(storage, project, bid, force, before)
        if done is not None:
            return done, False
        t0 = time.perf_counter()
        with work_folder() as work:
            result = run_blender(blender_spec(spec, storage, project, work), work, on_progress, python)
            return upload_result(spec, project, bid, result, storage, on_progress, t0), True


async def render_batch_async(raw_spec: dict, storage, project: str | None = None, force: bool = False,
                             on_progress=None, python: str | None = None, views=None,
                             standby=None) -> tuple[dict, bool]:
    """render_batch for an event loop. Cancelling the task kills the Blender child; during the
    upload (run in a thread so the loop stays free) it stops before the manifest is written.
    views: (start, stop) renders one shard of the batch and returns its part (no manifest; see
    build_batch_manifest) instead of the manifest. standby: a process from spawn_standby.
    As render_batch, one render of a batch at a time on this machine; a waiter shares the batch."""
    import asyncio

    spec, project, bid = prepare(raw_spec, project)
    loop = asyncio.get_running_loop()
    if views is not None:  # a shard: its own views, no manifest; the client merges and commits
        await loop.run_in_executor(None, storage.check)
        return await _render_async(spec, project, bid, storage, on_progress, python, views, standby), True
    before = await loop.run_in_executor(None, storage_mod.read_manifest, storage, project, bid)
    if before is None or force:
        async with storage_mod.batch_lock_async(storage, project, bid):
            done = await loop.run_in_executor(None, done_meanwhile, storage, project, bid, force, before)
            if done is None:
                return await _render_async(spec, project, bid, storage, on_progress, python, views, standby), True
        before = done
    if standby is not None and standby.returncode is None:
        standby.stdin.close()  # not needed for this job: let it exit
    return before, False


async def _render_async(spec, project, bid, storage, on_progress, python, views, standby) -> dict:
    import asyncio
    import threading

    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    with work_folder() as work:
        child_spec = await loop.run_in_executor(None, blender_spec, spec, storage, project, work)
        result = await run_blender_async(child_spec, work, on_progress, python, views=views, standby=standby)
        stop = threading.Event()
        fut = loop.run_in_executor(None, upload_result, spec, project, bid, result, storage, on_progress, t0, stop, views)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            stop.set()
            try:  # the thread reads files from work: let it stop before they are deleted
                await asyncio.shield(fut)
            except Exception:
                pass
            raise
