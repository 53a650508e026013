"""pose_batch: render a JobSpec in a Blender child process, upload every file, manifest last."""
from __future__ import annotations

from pose_factory import render
from pose_factory.storage import manifest_key


async def run(spec: dict, *, project: str | None, force: bool, storage, report) -> dict:
    manifest, rendered = await render.render_batch_async(spec, storage, project=project, force=force,
                                                         on_progress=report)
    files = [f["key"] for e in manifest["entries"] for f in e["files"].values()]
    return {"batch_id": manifest["batch_id"], "project": manifest["project"],
            "manifest_key": manifest_key(manifest["project"], manifest["batch_id"]),
            "images": sum(k.endswith(".png") for k in files), "files": len(files),
            "entries": len(manifest["entries"]), "rendered": rendered,
            "timings": dict(manifest.get("timings") or {})}
