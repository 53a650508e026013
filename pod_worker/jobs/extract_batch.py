"""extract (stored): a JobSpec of kind "extract" with images in storage (keys under the project's
uploads/) or at http(s) URLs → keypoints and skeletons stored as a batch with a manifest
(pose_factory/extract/batch.py). The work runs in a thread; a cancel stops it at the next image,
before the manifest is written. The detector is the worker's (loaded once, kept)."""
from __future__ import annotations

from pod_worker.jobs import run_in_thread
from pod_worker.jobs.extract import detector
from pose_factory.extract import batch
from pose_factory.storage import manifest_key


async def run(spec: dict, *, project: str | None, force: bool, storage, report, images=(), **_unused) -> dict:
    op = batch.normalize(spec)["openpose"]
    det = detector(op["hands"], op["face"])  # ExtractorUnavailable: the handler names it

    def work(progress):
        return batch.extract_batch(list(images), spec, storage, det, project=project, force=force,
                                   on_progress=progress)

    manifest, made = await run_in_thread(work, report)
    return {"batch_id": manifest["batch_id"], "project": manifest["project"], "made": made, "rendered": made,
            "manifest_key": manifest_key(manifest["project"], manifest["batch_id"]),
            "images": len(manifest["entries"]), "found": manifest["extract"]["found"],
            "backend": manifest["extract"]["backend"], "timings": dict(manifest.get("timings") or {})}
