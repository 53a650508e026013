"""The client side of a stored extract job (pose_factory/extract/batch.py): images uploaded to the
project's uploads/ (named by their content), or URLs and keys as they are, then one worker job
(local or RunPod, through pose_factory.jobs.client with its progress, cancel, budget and cost);
the batch's manifest read back and recorded in the local index. No MediaPipe here.

    from pose_factory.extract.client import request_extract
    res = request_extract([rgb_array, "https://example.com/photo.jpg"], {"openpose": {"face": True}},
                          project="photos", backend="local")        # -> JobResult: res.manifest, res.batch_id
"""
from __future__ import annotations

import numpy as np

from .. import settings as settings_mod
from .. import spec as spec_mod
from ..errors import SpecError
from ..validate import describe
from ..jobs import budget
from ..jobs import client as client_mod
from ..mesh.client import upload_views
from . import batch


def estimate_usd(n_images: int, rp: dict) -> float:
    """The RunPod reservation of an extract job of n images."""
    return budget.estimate_cost(batch.estimate_seconds(n_images) * rp["speed_factor"], None, rp["gpu_class"],
                                rp["idle_timeout_s"], rp["startup_s"])


def request_extract(images, raw_spec: dict | None = None, *, project: str | None = None, force: bool = False,
                    backend: str | None = None, settings: dict | None = None, env: dict | None = None,
                    on_progress=None, check_cancel=None) -> client_mod.JobResult:
    """images: uint8 (H, W, 3) arrays (uploaded), http(s) URLs (the worker downloads them) or keys
    under the project's uploads/; raw_spec: the extract spec (batch.normalize). Raises SpecError,
    ClientConfigError, BudgetExceeded, JobFailed (JobCancelled, JobTimeout, and the worker's refusal
    of a source: a URL that cannot be reached, is too large or is no image), StorageError, or what
    check_cancel raised."""
    settings = settings_mod.load_settings() if settings is None else settings
    env = settings_mod.load_env() if env is None else env
    raw_spec = dict(raw_spec or {}, kind=batch.KIND)
    project = spec_mod.validate_project_name(project or raw_spec.get("project") or settings["project"])
    batch.normalize(dict(raw_spec, project=project))  # refused here, before anything is uploaded
    images = list(images)
    if not 1 <= len(images) <= batch.MAX_IMAGES:
        raise SpecError("images", f"got {len(images)} images", f"1 to {batch.MAX_IMAGES} images a job")
    for i, a in enumerate(images):
        if not isinstance(a, str) and not (getattr(a, "dtype", None) == np.uint8 and a.ndim == 3 and a.shape[2] == 3):
            raise SpecError(f"images[{i}]", f"got {describe(a)}",
                            "an RGB uint8 array (H, W, 3), an http(s) URL or a key under the project's uploads/")
    which = backend or settings["client"]
    storage = client_mod.get_client(which, settings, env).storage
    keys = iter(upload_views(storage, project, [a for a in images if not isinstance(a, str)]))
    sources = [s if isinstance(s, str) else next(keys) for s in images]
    job_input = {"spec": raw_spec, "project": project, "force": bool(force), "images": sources}
    return client_mod.run_stored_job(job_input, backend=which, settings=settings, env=env, on_progress=on_progress,
                                     check_cancel=check_cancel,
                                     estimate_usd=estimate_usd(len(sources), settings["runpod"]))
