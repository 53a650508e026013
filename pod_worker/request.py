"""A job's input, validated before anything runs: shared by the RunPod handler and the local worker.

    {"spec": <JobSpec>, "project": optional name, "force": optional bool,
     "shard": optional {"views": [start, stop]}}
"""
from __future__ import annotations

import asyncio
import os
import traceback

from pod_worker.jobs import MODULES, job_module
from pod_worker.storage_env import storage_from_env
from pose_factory.storage import projects
from pose_factory import spec as spec_mod
from pose_factory.errors import ManifestError, SpecError, StorageError, clip, echo
from pose_factory.render import RenderError, remove_leftovers

INPUT_KEYS = ("spec", "project", "force", "shard")


class InputError(ValueError):
    def __init__(self, message: str = "", *args):
        super().__init__(clip(message), *args)


def parse_input(job_input) -> dict:
    """{"kind", "spec", "project", "force", "shard"} from a job's input; InputError names the field."""
    if not isinstance(job_input, dict):
        raise InputError(f"input: expected an object with 'spec' (and optional 'project', 'force'), "
                         f"got {type(job_input).__name__}")
    unknown = sorted(set(job_input) - set(INPUT_KEYS))
    if unknown:
        raise InputError(f"input.{clip(str(unknown[0]), 60)}: unknown field, allowed: {', '.join(INPUT_KEYS)}")
    raw = job_input.get("spec")
    if not isinstance(raw, dict):
        raise InputError("input.spec: expected a JobSpec object, got "
                         + ("nothing" if raw is None else type(raw).__name__))
    kind = raw.get("kind", "pose_batch")
    if not isinstance(kind, str) or kind not in MODULES:
        raise InputError(f"input.spec.kind: got {echo(kind)}, allowed: {', '.join(MODULES)}")
    force = job_input.get("force", False)
    if not isinstance(force, bool):
        raise InputError(f"input.force: got {echo(force)}, allowed: true or false")
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
    return {"kind": kind, "spec": raw, "project": project, "force": force,
            "shard": _shard(job_input.get("shard"), raw)}


def _shard(shard, raw: dict):
    """{"views": [start, stop]} (one shard of the batch's views) or None."""
    if shard is None:
        return None
    views = shard.get("views") if isinstance(shard, dict) and set(shard) == {"views"} else None
    n = _n_views(raw)
    if not (isinstance(views, list) and len(views) == 2 and all(type(v) is int for v in views)
            and 0 <= views[0] < views[1] <= n):
        raise InputError(f"input.shard: got {echo(shard)}, allowed: {{\"views\": [start, stop]}} "
                         f"with 0 <= start < stop <= {n} (the batch's views)")
    return {"views": views}


def _n_views(raw: dict) -> int:
    cams = spec_mod.normalize_spec(raw)["cameras"]
    return cams["views"] if cams["type"] == "orbit" else len(cams["cameras"])


def clear_leftovers(log) -> None:
    """At worker start-up: removes what renders of a killed worker left in the temp folder
    (render.remove_leftovers), so they never pile up on a small container disk."""
    for path in remove_leftovers():
        log(f"removed a killed render's leftover {path}")


async def execute(job_input, report, *, standby=None, on_bug=None) -> dict:
    """Runs one job: validate, pick storage, dispatch by kind. Returns the job's output, or
    {"error": "<what was wrong>"} (never a traceback: that goes to on_bug). report(event) gets the
    DESIGN.md §4 states; cancelling the awaiting task kills the render and re-raises."""
    try:
        req = parse_input(job_input)
    except InputError as e:
        return {"error": str(e)}
    except Exception as e:  # no input may raise past here (the SDK would hand its traceback to the caller)
        if on_bug:
            on_bug(traceback.format_exc())
        return {"error": f"input: could not be read ({type(e).__name__}: {clip(e, 300)}), allowed: "
                         "an object with 'spec' (a JobSpec) and optional 'project', 'force', 'shard'"}
    try:
        storage = storage_from_env()
        storage.check()  # a missing bucket is named before anything is written or rendered
        # a job creates its project when storage has none; one made beforehand is used unchanged
        projects.ensure(storage, req["project"] or spec_mod.normalize_spec(req["spec"])["project"])
    except (StorageError, OSError) as e:  # the worker's environment, not the job, is wrong
        return {"error": f"worker storage: {e}"}
    last = {}

    def track(event):
        last["state"] = event.get("state")
        report(event)

    track({"state": "queued"})
    try:
        out = await job_module(req["kind"]).run(req["spec"], project=req["project"], force=req["force"],
                                                storage=storage, report=track, shard=req["shard"],
                                                standby=standby)
    except asyncio.CancelledError:
        track({"state": "cancelled"})
        raise
    except (SpecError, StorageError, ManifestError, RenderError, OSError) as e:
        track({"state": "failed"})
        return {"error": f"{req['kind']} failed: {type(e).__name__}: {clip(e)}"}
    except Exception as e:  # a bug: the traceback goes to the worker log, the client gets one line
        if on_bug:
            on_bug(traceback.format_exc())
        track({"state": "failed"})
        return {"error": f"{req['kind']} failed: unexpected {type(e).__name__}: {clip(e, 500)}"}
    if last.get("state") != "completed":  # a shard, or an existing batch: nothing to upload last
        track({"state": "completed"})
    return out
