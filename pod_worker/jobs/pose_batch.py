"""pose_batch: render a JobSpec in a Blender child process, upload every file, manifest last.
A shard ({"views": [start, stop]}) renders only those views and returns its part of the
manifest for the client to merge (render.write_shard_depth, then render.build_batch_manifest); it
writes no manifest. Its 8-bit depth, when the batch has one depth range, is written at the merge."""
from __future__ import annotations

from pose_factory import render
from pose_factory.storage import manifest_key


async def run(spec: dict, *, project: str | None, force: bool, storage, report, shard=None,
              standby=None) -> dict:
    out, rendered = await render.render_batch_async(spec, storage, project=project, force=force,
                                                    on_progress=report, views=shard and shard["views"],
                                                    standby=standby)
    files = [f["key"] for e in out["entries"] for f in e["files"].values()]
    reply = {"batch_id": out["batch_id"], "project": out["project"],
             "images": sum(k.endswith(".png") for k in files), "files": len(files),
             "entries": len(out["entries"]), "rendered": rendered, "timings": dict(out.get("timings") or {})}
    if shard:
        reply["shard"] = out
    else:
        reply["manifest_key"] = manifest_key(out["project"], out["batch_id"])
    return reply
