"""The RunPod serverless handler (DESIGN.md §5 "RunPod").

Input: {"spec": <JobSpec>, "project": optional name, "force": optional bool, "shard": optional
{"views": [start, stop]}}, or the posture API's {"front", "side"} / {"input": {"front_image",
"side_image"}} (DESIGN.md §7), or an inline {"extract": …} (pod_worker/request.py). Output: the batch's
keys in storage and counts, timings and a cost estimate, never image bytes; a bad input gives
{"error": "<field>: <what is wrong>"}. The handler is async and Blender runs in a child process,
so when the SDK cancels the job's task the child is killed and no manifest is written.

    python pod_worker/handler.py --test_input '{"input": {...}}'   # or ./test_input.json
    python pod_worker/handler.py --rp_serve_api --rp_api_host 127.0.0.1
"""
from __future__ import annotations

import os
import sys
import time
import traceback

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runpod.serverless import progress_update  # noqa: E402
from runpod.serverless.modules.rp_logger import RunPodLogger  # noqa: E402

from pod_worker.request import clear_leftovers, execute  # noqa: E402

log = RunPodLogger()
PROGRESS_INTERVAL_S = 1.0  # each progress_update is an HTTP post: at most one per second per state


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
    """The job's output, or {"error": …} for every bad input: never an exception, whose
    traceback the SDK would hand to the API caller (it goes to the worker log instead)."""
    t0 = time.perf_counter()
    job_id = job.get("id") if isinstance(job, dict) else None
    try:
        out = await execute(job.get("input") if isinstance(job, dict) else None, Reporter(job),
                            on_bug=lambda text: log.error(text, job_id))
    except Exception as e:  # a bug past execute's own checks: one line for the caller
        log.error(traceback.format_exc(), job_id)
        return {"error": f"worker: unexpected {type(e).__name__} (see the worker log)"}
    if "error" not in out:
        execution = time.perf_counter() - t0
        out.setdefault("timings", {})["handler"] = round(execution, 3)
        out["cost"] = _cost(execution)
    return out


if __name__ == "__main__":
    import runpod

    clear_leftovers(log.info)
    runpod.serverless.start({"handler": handler})
