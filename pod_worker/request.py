"""A job's input, validated before anything runs: shared by the RunPod handler and the local worker.

    {"spec": <JobSpec>, "project": optional name, "force": optional bool,
     "shard": optional {"views": [start, stop]}, "validate": optional bool}   # a pose batch (render)
    {"front": b64, "side": b64} or {"input": {"front_image": b64, "side_image": b64}}  # posture
    {"extract": {"images": [b64, ...], "hands": bool, "face": bool, "world": bool}}  # extract, inline
    {"spec": {"kind": "reconstruct" | "extract", ...}, "project", "force",
     "images": [http(s) URL or key under projects/<project>/uploads/, ...]}  # stored from sources

A posture request is recognised by its shape (DESIGN.md §7: no extra field), so a client written
against the founding documents works unchanged; an empty input is taken as one (its error names
both forms and the JobSpec). Posture and inline extract store nothing and need no project.
"""
from __future__ import annotations

import asyncio
import os
import traceback

from pod_worker.jobs import SPEC_KINDS, job_module
from pod_worker.storage_env import storage_from_env
from pose_factory.storage import projects
from pose_factory.extract import posture
from pose_factory.extract.detector import ExtractorUnavailable
from pose_factory.mesh import inputs as source_inputs
from pose_factory import spec as spec_mod
from pose_factory.errors import ManifestError, SpecError, StorageError, clip, echo
from pose_factory.render import RenderError, remove_leftovers

INPUT_KEYS = ("spec", "project", "force", "shard", "validate", "images", "masks")  # images: reconstruct, extract
MAX_VIEW_SOURCES = 64


class InputError(ValueError):
    def __init__(self, message: str = "", *args):
        super().__init__(clip(message), *args)


def parse_input(job_input) -> dict:
    """{"kind", "spec", "project", "force", "shard"} from a job's input; InputError names the field.
    A posture or inline extract input gives {"kind", "input"}: its job checks the rest."""
    if posture.is_posture_input(job_input):
        return {"kind": "posture", "input": job_input}
    if isinstance(job_input, dict) and "extract" in job_input and "spec" not in job_input:
        return {"kind": "extract", "input": job_input}
    if job_input is None:
        raise InputError("input: the job has none: RunPod hands the worker only the request body's \"input\", so "
                         "post {\"input\": {...}} (a posture request: {\"input\": {\"front\": b64, \"side\": b64}})")
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
    if not isinstance(kind, str) or kind not in SPEC_KINDS:  # posture and inline extract take no JobSpec
        raise InputError(f"input.spec.kind: got {echo(kind)}, allowed: {', '.join(SPEC_KINDS)}")
    force = job_input.get("force", False)
    if not isinstance(force, bool):
        raise InputError(f"input.force: got {echo(force)}, allowed: true or false")
    if kind == "reconstruct":
        return _reconstruct_input(job_input, raw, force)
    if kind == "extract":
        return _extract_input(job_input, raw, force)
    for name in ("images", "masks"):
        if name in job_input:
            raise InputError(f"input.{name}: only a reconstruct or extract job takes it, allowed for {kind}: spec, "
                             "project, force, shard")
    validate = job_input.get("validate", False)
    if not isinstance(validate, bool):
        raise InputError(f"input.validate: got {echo(validate)}, allowed: true or false")
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
    if validate and not {"shaded", "keypoints"} <= set(spec_mod.normalize_spec(raw)["render"]["passes"]):
        raise InputError("input.validate: render validation reads the shaded renders and our keypoints, allowed: "
                         "true only with 'shaded' and 'keypoints' in spec.render.passes")
    return {"kind": kind, "spec": raw, "project": project, "force": force,
            "shard": _shard(job_input.get("shard"), raw), "validate": validate}


def _sources(value, name: str, project: str, required: bool, limit: int = MAX_VIEW_SOURCES):
    """A job's image list: http(s) URLs or storage keys under the project's uploads/."""
    if value is None and not required:
        return None
    try:
        return source_inputs.check_sources(value, project, name, limit)
    except SpecError as e:
        raise InputError(f"input.{e}") from None


def _project(job_input: dict, spec: dict) -> str:
    project = job_input.get("project") or spec["project"]
    try:
        return spec_mod.validate_project_name(project)
    except SpecError as e:
        raise InputError(f"input.{e}") from None


def _extract_input(job_input: dict, raw: dict, force: bool) -> dict:
    from pose_factory.extract import batch

    for name in ("shard", "masks", "validate"):
        if job_input.get(name) not in (None, False):
            raise InputError(f"input.{name}: an extract job takes none, allowed: spec, project, force, images")
    try:
        spec = batch.normalize(raw)
    except SpecError as e:
        raise InputError(f"input.spec.{e}" if e.field else f"input.spec: {e}") from None
    project = _project(job_input, spec)
    images = _sources(job_input.get("images"), "images", project, True, batch.MAX_IMAGES)
    return {"kind": "extract", "spec": raw, "project": project, "force": force, "shard": None, "images": images}


def _reconstruct_input(job_input: dict, raw: dict, force: bool) -> dict:
    from pose_factory.mesh import reconstruct

    if job_input.get("shard") is not None:
        raise InputError("input.shard: a reconstruct job is never sharded, allowed: no shard")
    try:
        spec = reconstruct.normalize(raw)
    except SpecError as e:
        raise InputError(f"input.spec.{e}" if e.field else f"input.spec: {e}") from None
    project = _project(job_input, spec)
    images = _sources(job_input.get("images"), "images", project, True)
    masks = _sources(job_input.get("masks"), "masks", project, False)
    if masks is not None and len(masks) != len(images):
        raise InputError(f"input.masks: got {len(masks)} masks for {len(images)} images, allowed: one per image")
    return {"kind": "reconstruct", "spec": raw, "project": project, "force": force, "shard": None,
            "images": images, "masks": masks}


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


async def _run_inline(req: dict, report, on_bug) -> dict:
    report({"state": "queued"})
    try:
        return await job_module(req["kind"]).run(req["input"], report=report)
    except asyncio.CancelledError:
        report({"state": "cancelled"})
        raise
    except Exception as e:  # a bug: the traceback goes to the worker log, the client gets one line
        if on_bug:
            on_bug(traceback.format_exc())
        report({"state": "failed"})
        message = f"{req['kind']} failed: unexpected {type(e).__name__}: {clip(e, 500)}"
        return posture.error(message) if req["kind"] == "posture" else {"error": message}


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
    if "input" in req:  # posture, inline extract: nothing stored
        return await _run_inline(req, report, on_bug)
    try:
        storage = storage_from_env()
        storage.check()  # a missing bucket is named before anything is written or rendered
        # a job creates its project when storage has none; one made beforehand is used unchanged
        projects.ensure(storage, req["project"] or spec_mod.normalize_spec(req["spec"])["project"])
        extra = {k: req[k] for k in ("images", "masks") if k in req}
    except (StorageError, OSError) as e:  # the worker's environment, not the job, is wrong
        return {"error": f"worker storage: {e}"}
    last = {}

    def track(event):
        last["state"] = event.get("state")
        report(event)

    track({"state": "queued"})
    try:
        out = await job_module(SPEC_KINDS[req["kind"]]).run(req["spec"], project=req["project"], force=req["force"],
                                                storage=storage, report=track, shard=req["shard"],
                                                standby=standby, validate=req.get("validate", False), **extra)
    except asyncio.CancelledError:
        track({"state": "cancelled"})
        raise
    except (SpecError, StorageError, ManifestError, RenderError, OSError, ExtractorUnavailable) as e:
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
