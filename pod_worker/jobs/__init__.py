"""One module per job kind, each with ``async def run(spec, *, project, force, storage, report)``
(the JobSpec kinds: pose_batch, reconstruct, extract_batch — a JobSpec of kind "extract") or
``async def run(job_input, *, report)`` (posture, inline extract: nothing stored).
Imported on demand so a kind's dependencies load only when a job of that kind arrives."""
from __future__ import annotations

import asyncio
import importlib
import threading

MODULES = {"pose_batch": "pod_worker.jobs.pose_batch", "reconstruct": "pod_worker.jobs.reconstruct",
           "posture": "pod_worker.jobs.posture", "extract": "pod_worker.jobs.extract",
           "extract_batch": "pod_worker.jobs.extract_batch"}
# a JobSpec's kind → its module's key
SPEC_KINDS = {"pose_batch": "pose_batch", "reconstruct": "reconstruct", "extract": "extract_batch"}


def job_module(kind: str):
    return importlib.import_module(MODULES[kind])


class Stopped(Exception):
    """Raised inside a threaded job's work at its next progress report once the job was cancelled."""


async def run_in_thread(work, report):
    """work(progress) in a thread, its progress events forwarded to report on the event loop.
    Cancelling the awaiting task makes the work's next progress call raise Stopped (so it ends
    between steps, before its manifest), waits for the thread to end, and re-raises."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def progress(event):
        if stop.is_set():
            raise Stopped()
        loop.call_soon_threadsafe(report, event)

    fut = loop.run_in_executor(None, work, progress)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        stop.set()
        try:
            await asyncio.shield(fut)
        except BaseException:
            pass
        raise
