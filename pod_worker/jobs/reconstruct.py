"""reconstruct: a view set (images in storage under the project's uploads/, or http(s) URLs) →
a mesh batch in storage (pose_factory.mesh.reconstruct). The work runs in a thread; a cancel stops
it at the next progress report (between views, steps and formats), before the manifest is written."""
from __future__ import annotations

from pod_worker.jobs import run_in_thread
from pose_factory.mesh import inputs
from pose_factory.mesh import reconstruct as rec
from pose_factory.storage import manifest_key


def _mask(storage, src, where):
    return inputs.load_source(storage, src, where).max(-1) > 127


async def run(spec: dict, *, project: str | None, force: bool, storage, report, images=(), masks=None,
              **_unused) -> dict:
    def work(progress):
        progress({"state": "generating_images", "done": 0, "total": len(images)})
        arrays = [inputs.load_source(storage, s, f"images[{i}]") for i, s in enumerate(images)]
        mask_arrays = None if masks is None else [_mask(storage, s, f"masks[{i}]") for i, s in enumerate(masks)]
        return rec.reconstruct(arrays, mask_arrays, spec, storage, project=project, force=force, on_progress=progress)

    manifest, made = await run_in_thread(work, report)
    return {"batch_id": manifest["batch_id"], "project": manifest["project"], "made": made, "rendered": made,
            "manifest_key": manifest_key(manifest["project"], manifest["batch_id"]), "asset": manifest["asset"],
            "timings": dict(manifest.get("timings") or {})}
