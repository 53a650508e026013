"""reconstruct: a view set (images in storage under the project's uploads/, or http(s) URLs) →
a mesh batch in storage (pose_factory.mesh.reconstruct). The work runs in a thread; a cancel stops
it at the next progress report (between views, steps and formats), before the manifest is written."""
from __future__ import annotations

import asyncio
import threading

from pose_factory.mesh import inputs
from pose_factory.mesh import reconstruct as rec
from pose_factory.storage import manifest_key


class _Stopped(Exception):
    pass


def _source(storage, src: str, where: str):
    """An image's bytes from storage (a key) or the URL itself (inputs.load_image downloads it)."""
    return src if src.lower().startswith(("http://", "https://")) else storage.get_bytes(src)


def _image(storage, src, where):
    return inputs.load_image(_source(storage, src, where), where)


def _mask(storage, src, where):
    return _image(storage, src, where).max(-1) > 127


async def run(spec: dict, *, project: str | None, force: bool, storage, report, images=(), masks=None,
              **_unused) -> dict:
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def progress(event):
        if stop.is_set():
            raise _Stopped()
        loop.call_soon_threadsafe(report, event)

    def work():
        progress({"state": "generating_images", "done": 0, "total": len(images)})
        arrays = [_image(storage, s, f"images[{i}]") for i, s in enumerate(images)]
        mask_arrays = None if masks is None else [_mask(storage, s, f"masks[{i}]") for i, s in enumerate(masks)]
        return rec.reconstruct(arrays, mask_arrays, spec, storage, project=project, force=force, on_progress=progress)

    fut = loop.run_in_executor(None, work)
    try:
        manifest, made = await asyncio.shield(fut)
    except asyncio.CancelledError:
        stop.set()
        try:
            await asyncio.shield(fut)
        except BaseException:
            pass
        raise
    return {"batch_id": manifest["batch_id"], "project": manifest["project"], "made": made, "rendered": made,
            "manifest_key": manifest_key(manifest["project"], manifest["batch_id"]), "asset": manifest["asset"],
            "timings": dict(manifest.get("timings") or {})}
