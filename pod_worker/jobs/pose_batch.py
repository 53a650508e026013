"""pose_batch: render a JobSpec in a Blender child process, upload every file, manifest last.
A shard ({"views": [start, stop]}) renders only those views and returns its part of the
manifest for the client to merge (render.write_shard_depth, then render.build_batch_manifest); it
writes no manifest. Its 8-bit depth, when the batch has one depth range, is written at the merge.

validate: after a whole batch is rendered, MediaPipe reads its shaded renders and the PCK of its
keypoints against ours goes into the manifest ("validation", pose_factory/extract/validation.py);
the manifest is written again with it (the files are unchanged). Not for shards."""
from __future__ import annotations

import asyncio
import json

from pose_factory import render
from pose_factory.manifest import validate_manifest
from pose_factory.storage import manifest_key


async def run(spec: dict, *, project: str | None, force: bool, storage, report, shard=None,
              standby=None, validate: bool = False) -> dict:
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
        if validate and (rendered or "validation" not in out):
            report({"state": "extracting", "done": 0, "total": len(out["entries"])})
            reply["validation"] = await asyncio.to_thread(_validate, storage, out)
    return reply


def _validate(storage, manifest: dict) -> dict:
    from pod_worker.jobs.extract import detector
    from pose_factory.extract.validation import validate_batch

    manifest = dict(manifest, validation=validate_batch(storage, manifest, detector(False)))
    validate_manifest(manifest)
    storage.put_bytes(manifest_key(manifest["project"], manifest["batch_id"]),
                      json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    return {k: v for k, v in manifest["validation"].items() if k != "per_joint"}
