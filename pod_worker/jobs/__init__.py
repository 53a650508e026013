"""One module per job kind, each with ``async def run(spec, *, project, force, storage, report)``
(pose_batch) or ``async def run(job_input, *, report)`` (posture, extract: nothing stored).
Imported on demand so a kind's dependencies load only when a job of that kind arrives."""
from __future__ import annotations

import importlib

MODULES = {"pose_batch": "pod_worker.jobs.pose_batch", "reconstruct": "pod_worker.jobs.reconstruct",
           "posture": "pod_worker.jobs.posture", "extract": "pod_worker.jobs.extract"}


def job_module(kind: str):
    return importlib.import_module(MODULES[kind])
