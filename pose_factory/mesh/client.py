"""The ComfyUI side of a reconstruct job: the views uploaded to storage (the project's uploads/,
named by their content), one worker job (local or RunPod, through pose_factory.jobs.client with its
progress, cancel, budget and cost), the mesh batch's manifest read back. Numpy and the core only:
no trimesh, scikit-image or scipy here (they live in the worker environment)."""
from __future__ import annotations

import hashlib

import numpy as np

from .. import imageio
from ..jobs import budget
from ..jobs import client as client_mod
from .. import settings as settings_mod
from .. import spec as spec_mod
from ..errors import SpecError
from . import reconstruct

EXECUTION_S = {"draft": 20.0, "standard": 40.0, "high": 150.0}  # a GPU worker's seconds, for the budget


def upload_key(project: str, data: bytes) -> str:
    return f"projects/{project}/uploads/{hashlib.sha256(data).hexdigest()[:32]}.png"


def upload_views(storage, project: str, arrays) -> list[str]:
    """Each uint8 image (H, W, 3) or mask (H, W) as a PNG under the project's uploads/ (written once:
    the key is its content's hash); their keys."""
    keys = []
    for a in arrays:
        data = imageio.encode_png(np.ascontiguousarray(a))
        key = upload_key(project, data)
        if not storage.exists(key):
            storage.put_bytes(key, data)
        keys.append(key)
    return keys


def estimate_usd(spec: dict, rp: dict) -> float:
    return budget.estimate_cost(EXECUTION_S[spec["quality_tier"]] * rp["speed_factor"], None, rp["gpu_class"],
                                rp["idle_timeout_s"], rp["startup_s"])


def request_mesh(images, masks, raw_spec: dict, *, project: str | None = None, force: bool = False,
                 backend: str | None = None, settings: dict | None = None, env: dict | None = None,
                 on_progress=None, check_cancel=None) -> client_mod.JobResult:
    """images: uint8 (H, W, 3) arrays, or http(s) URLs the worker downloads; masks: None or uint8/bool
    (H, W) arrays. Raises SpecError (bad spec or view set), ClientConfigError, BudgetExceeded,
    JobFailed (JobCancelled, JobTimeout), StorageError, or what check_cancel raised."""
    settings = settings_mod.load_settings() if settings is None else settings
    env = settings_mod.load_env() if env is None else env
    spec = reconstruct.normalize(raw_spec)
    project = spec_mod.validate_project_name(project or raw_spec.get("project") or settings["project"])
    n = len(images)
    if spec["cameras"] == "canonical" and n not in (4, 8):
        raise SpecError("images", f"got {n} views", "4 or 8 views (the canonical view sets)")
    if spec["cameras"] != "canonical" and n != len(spec["cameras"]):
        raise SpecError("images", f"got {n} views for {len(spec['cameras'])} cameras", "one view per camera")
    if masks is not None and len(masks) != n:
        raise SpecError("masks", f"got {len(masks)} masks for {n} views", "one mask per view")
    which = backend or settings["client"]
    client = client_mod.get_client(which, settings, env)
    storage = client.storage
    sources = [s if isinstance(s, str) else None for s in images]
    arrays = [a for a in images if not isinstance(a, str)]
    keys = iter(upload_views(storage, project, arrays))
    sources = [s if s is not None else next(keys) for s in sources]
    mask_keys = None if masks is None else upload_views(
        storage, project, [np.where(np.asarray(m) > (127 if np.asarray(m).dtype == np.uint8 else 0.5), 255, 0)
                           .astype(np.uint8) for m in masks])
    job_input = {"spec": dict(raw_spec, kind=reconstruct.KIND), "project": project, "force": force, "images": sources}
    if mask_keys is not None:
        job_input["masks"] = mask_keys
    return client_mod.run_stored_job(job_input, backend=which, settings=settings, env=env, on_progress=on_progress,
                                     check_cancel=check_cancel, estimate_usd=estimate_usd(spec, settings["runpod"]))
