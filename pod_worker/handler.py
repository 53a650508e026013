"""The RunPod serverless handler (DESIGN.md §5 "RunPod").

Input: {"spec": <JobSpec>, "project": optional name, "force": optional bool}. Output: the batch's
keys in storage and counts, timings and a cost estimate, never image bytes; a bad input gives
{"error": "<field>: <what is wrong>"}. The handler is async and Blender runs in a child process,
so when the SDK cancels the job's task the child is killed and no manifest is written.

    python pod_worker/handler.py --test_input '{"input": {...}}'   # or ./test_input.json
    python pod_worker/handler.py --rp_serve_api --rp_api_host 127.0.0.1
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runpod.serverless import progress_update  # noqa: E402
from runpod.serverless.modules.rp_logger import RunPodLogger  # noqa: E402

from pod_worker.jobs import MODULES, job_module  # noqa: E402
from pod_worker.storage_env import storage_from_env  # noqa: E402
from pose_factory import spec as spec_mod  # noqa: E402
from pose_factory.errors import ManifestError, SpecError, StorageError  # noqa: E402
from pose_factory.render import RenderError  # noqa: E402

log = RunPodLogger()
INPUT_KEYS = ("spec", "project", "force")
PROGRESS_INTERVAL_S = 1.0  # each progress_update is an HTTP post: at most one per second per state


class InputError(ValueError):
    pass


def parse_input(job_input) -> dict:
    """{"kind", "spec", "project", "force"} from a job's input; InputError names the field."""
    if not isinstance(job_input, dict):
        raise InputError(f"input: expected an object with 'spec' (and optional 'project', 'force'), "
                         f"got {type(job_input).__name__}")
    unknown = sorted(set(job_input) - set(INPUT_KEYS))
    if unknown:
        raise InputError(f"input.{unknown[0]}: unknown field, allowed: {', '.join(INPUT_KEYS)}")
    raw = job_input.get("spec")
    if not isinstance(raw, dict):
        raise InputError("input.spec: expected a JobSpec object, got "
                         + ("nothing" if raw is None else type(raw).__name__))
    kind = raw.get("kind", "pose_batch")
    if kind not in MODULES:
        raise InputError(f"input.spec.kind: got {kind!r}, allowed: {', '.join(MODULES)}")
    force = job_input.get("force", False)
    if not isinstance(force, bool):
        raise InputError(f"input.force: got {force!r}, allowed: true or false")
    try:
        spec_mod.normalize_spec(raw)  # refuse a bad spec before anything is queued
    except SpecError as e:
        raise InputError(f"input.spec.{e}" if e.field else f"input.spec: {e}") from None
    project = job_input.get("project")
    if project is not None:
        try:
            spec_mod.validate_project_name(project)
        except SpecError as e:
            raise InputError(f"input.{e}") from None
    elif "project" not in raw and os.environ.get("PROJECT_NAME"):
        project = os.environ["PROJECT_NAME"]
        try:
            spec_mod.validate_project_name(project)
        except SpecError as e:
            raise InputError(f"PROJECT_NAME (worker environment): {e.message}, allowed: {e.allowed}") from None
    return {"kind": kind, "spec": raw, "project": project, "force": force}


def _progress_enabled() -> bool:
    # Off RunPod (--test_input, --rp_serve_api) the SDK has no URL to post progress to.
    return bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))


class Reporter:
    """DESIGN.md §4 job states through progress_update: every state change, then at most one
    update per PROGRESS_INTERVAL_S within a state."""

    def __init__(self, job: dict):
        self.job, self.state, self.sent_at = job, None, 0.0

    def __call__(self, event: dict) -> None:
        now, state = time.monotonic(), event.get("state")
        last = event.get("done") is not None and event.get("done") == event.get("total")
        if state == self.state and not last and now - self.sent_at < PROGRESS_INTERVAL_S:
            return
        self.state, self.sent_at = state, now
        if _progress_enabled():
            progress_update(self.job, event)
        else:
            log.info(f"progress {event}", self.job.get("id"))


def _cost(execution_s: float) -> dict:
    """An estimate: this job's execution seconds × POSE_FACTORY_PRICE_PER_S (0 when unset);
    the client adds start-up and idle time (DESIGN.md §4 "Cost")."""
    try:
        price = float(os.environ.get("POSE_FACTORY_PRICE_PER_S", "0") or 0)
    except ValueError:
        price = 0.0
    return {"backend": "runpod" if os.environ.get("RUNPOD_POD_ID") else "local",
            "execution_s": round(execution_s, 3), "price_per_s": price,
            "estimate_usd": round(execution_s * price, 6)}


async def handler(job: dict) -> dict:
    t0 = time.perf_counter()
    try:
        req = parse_input(job.get("input"))
    except InputError as e:
        return {"error": str(e)}
    try:
        storage = storage_from_env()
    except (StorageError, OSError) as e:  # the worker's environment, not the job, is wrong
        return {"error": f"worker storage: {e}"}
    report = Reporter(job)
    report({"state": "queued"})
    try:
        out = await job_module(req["kind"]).run(req["spec"], project=req["project"], force=req["force"],
                                                storage=storage, report=report)
    except asyncio.CancelledError:
        report({"state": "cancelled"})
        raise
    except (SpecError, StorageError, ManifestError, RenderError, OSError) as e:
        report({"state": "failed"})
        return {"error": f"{req['kind']} failed: {type(e).__name__}: {e}"}
    except Exception as e:  # a bug: the traceback goes to the worker log, the client gets one line
        log.error(traceback.format_exc(), job.get("id"))
        report({"state": "failed"})
        return {"error": f"{req['kind']} failed: unexpected {type(e).__name__}: {e}"}
    if report.state != "completed":  # an existing batch: nothing was rendered
        report({"state": "completed"})
    execution = time.perf_counter() - t0
    out["timings"]["handler"] = round(execution, 3)
    out["cost"] = _cost(execution)
    return out


if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler})
