"""The founding 3D API on ComfyUI's server (DESIGN.md §7), registered by routes.register:

    POST /pose_factory/3d/from-image  JSON {"images": [paths under ComfyUI's input folder, or http(s) URLs],
                                            "masks"?: [...], "output_format"?: glb|obj|fbx,
                                            "quality_tier"?: draft|standard|high, "project"?, "reconstruction"?,
                                            "backend"?: local|runpod}
                                      → 202 {"job_id", "status_url"}
    GET  /pose_factory/3d/status/{job_id}    {"job_id", "state", "message", "asset_path", "download_url"}
    GET  /pose_factory/3d/download/{job_id}  the asset file (409 until the job has completed)

States: queued → generating_images → reconstructing_3d → post_processing → completed | failed; the
job's record lives in storage (pose_factory.mesh.jobs), so a status survives a restart. An unknown
or malformed job id is a 404. Images under the input folder are read and checked here (a bad one is a
400 before any job); URLs are downloaded by the worker (a failure ends the job with its reason)."""
from __future__ import annotations

import os

from pose_factory.errors import SpecError
from pose_factory.mesh import jobs, postprocess, reconstruct

PREFIX = "/pose_factory/3d"
BODY_KEYS = ("images", "masks", "output_format", "quality_tier", "project", "reconstruction", "backend")
CONTENT_TYPES = {"glb": "model/gltf-binary", "obj": "text/plain", "fbx": "application/octet-stream"}


def input_directory(settings: dict) -> str:
    try:
        import folder_paths
    except ImportError:
        return os.path.join(settings["data_root"], "input")
    return folder_paths.get_input_directory()


def _source(item, i: int, name: str, root: str):
    from pose_factory.mesh import inputs

    if isinstance(item, str) and item.lower().startswith(("http://", "https://")):
        return item  # the worker downloads it, with the limits of inputs.fetch_url
    image = inputs.load_image(item, f"{name}[{i}]", root=root)
    return image if name == "images" else image.max(-1)


def from_image(settings: dict, storage, body, route_error):
    """Checks the request, records the job, starts it; {"job_id", "status_url"}."""
    from pose_factory import spec as spec_mod
    from pose_factory.mesh.client import request_mesh

    if not isinstance(body, dict):
        raise route_error(400, "body: allowed: a JSON object {\"images\": [...], \"output_format\", \"quality_tier\"}")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise route_error(400, f"body.{unknown[0][:40]}: unknown key, allowed: {', '.join(BODY_KEYS)}")
    images, masks = body.get("images"), body.get("masks")
    fmt = body.get("output_format", "glb")
    tier = body.get("quality_tier", "standard")
    backend = body.get("backend", settings["client"])
    try:
        if not isinstance(images, list) or len(images) not in (4, 8):
            raise SpecError("images", f"got {len(images) if isinstance(images, list) else type(images).__name__} "
                                      "images", "a list of 4 or 8 views (paths under the input folder or URLs)")
        if fmt not in postprocess.FORMATS:
            raise SpecError("output_format", f"got {fmt!r}", "one of " + ", ".join(postprocess.FORMATS))
        if backend not in ("local", "runpod"):
            raise SpecError("backend", f"got {backend!r}", "local or runpod")
        project = spec_mod.validate_project_name(body.get("project") or settings["project"])
        raw = {"quality_tier": tier, "formats": sorted({"glb", fmt}),
               "backend": body.get("reconstruction", "visual_hull")}
        reconstruct.normalize(raw)
        root = input_directory(settings)
        sources = [_source(x, i, "images", root) for i, x in enumerate(images)]
        if masks is not None:
            if not isinstance(masks, list) or len(masks) != len(images):
                raise SpecError("masks", "not one per image", "a list of one mask image per view, or nothing")
            masks = [_source(x, i, "masks", root) for i, x in enumerate(masks)]
            if any(isinstance(m, str) for m in masks):
                raise SpecError("masks", "a URL", "mask files under the input folder")
    except SpecError as e:
        raise route_error(400, str(e)) from None

    def run(on_progress):
        res = request_mesh(sources, masks, raw, project=project, backend=backend, settings=settings,
                           on_progress=on_progress)
        return res.manifest, res.rendered

    record = jobs.start(storage, {"project": project, "output_format": fmt}, run)
    return {"job_id": record["job_id"], "status_url": f"{PREFIX}/status/{record['job_id']}"}


def _record(storage, job_id, route_error) -> dict:
    record = jobs.read(storage, job_id)
    if record is None:
        raise route_error(404, f"job {str(job_id)[:40]!r} not found (a job id is 32 hexadecimal characters "
                               "from POST /pose_factory/3d/from-image)")
    return record


def status(settings: dict, storage, job_id, route_error) -> dict:
    r = _record(storage, job_id, route_error)
    done = r["state"] == "completed"
    return {"job_id": r["job_id"], "state": r["state"], "message": r["message"], "project": r["project"],
            "batch_id": r["batch_id"], "asset_path": r["asset_key"] if done else None,
            "download_url": f"{PREFIX}/download/{r['job_id']}" if done else None}


def download(settings: dict, storage, job_id, route_error) -> tuple[bytes, str, str]:
    r = _record(storage, job_id, route_error)
    if r["state"] != "completed":
        raise route_error(409, f"job {job_id} is {r['state']}" + (f": {r['message']}" if r["message"] else "")
                          + "; the asset is served once it has completed")
    fmt = r["output_format"]
    return storage.get_bytes(r["asset_key"]), CONTENT_TYPES[fmt], f"{r['batch_id']}.{fmt}"


def register(routes, call, answer, json_body, bad_json, route_error) -> None:
    """Adds the handlers (call/answer/json_body from routes.register)."""
    from aiohttp import web

    @routes.post(PREFIX + "/from-image")
    async def _from_image(request):
        body = await json_body(request)
        if body is bad_json:
            return answer(400, {"error": "body: not valid JSON, allowed: {\"images\": [...], ...}"})
        status_code, payload = await call(from_image, True, body, route_error)
        return answer(202 if status_code == 200 else status_code, payload)

    @routes.get(PREFIX + "/status/{job_id}")
    async def _status(request):
        return answer(*await call(status, True, request.match_info["job_id"], route_error))

    @routes.get(PREFIX + "/download/{job_id}")
    async def _download(request):
        status_code, payload = await call(download, True, request.match_info["job_id"], route_error)
        if status_code != 200:
            return answer(status_code, payload)
        data, kind, name = payload
        return web.Response(body=data, content_type=kind,
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
