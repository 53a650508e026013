"""Command line: render a spec file into a batch folder, or the demo batch, through the job client
(the local worker by default, or RunPod).

    python -m pose_factory render SPEC.json|yaml [--out FOLDER] [--project NAME] [--force] [--backend local|runpod]
                                                 [--dry-run]
    python -m pose_factory demo [--out FOLDER]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import budget, client, errors, render, settings as settings_mod, spec as spec_mod, storage as storage_mod

DEMO_SPEC = {
    "schema_version": "1.0",
    "kind": "pose_batch",
    "project": "demo",
    "render": {"width": 512, "height": 512},
    "cameras": {"type": "orbit", "views": 4, "elevation": 10},
    "subjects": [{"type": "mannequin", "height": 1.75, "build": "average",
                  "poses": ["a_pose", {"preset": "waving", "hands": "open"}, "walk_left_step"]}],
}


def _progress_bar():
    """A tqdm bar for the job's progress events, made at the first event (a refused job shows none)."""
    from tqdm import tqdm

    state = {"bar": None, "name": None}

    def update(p):
        bar = state["bar"] = state["bar"] or tqdm(total=1, unit="image", desc="queued")
        if p["state"] != state["name"]:
            state["name"] = p["state"]
            bar.set_description(p["state"])
            bar.reset(total=max(p["total"], 1))
        bar.n = p["done"]
        bar.refresh()
        if p["state"] == "completed":
            bar.close()

    return update


def run(spec: dict, out: str | None, project: str | None, force: bool, sheet: bool, backend: str | None = None) -> int:
    """Renders through the job client into the configured storage (a local folder at out, if given)."""
    overrides = {"storage": {"backend": "local", "local_root": os.path.abspath(out)}} if out else None
    settings = settings_mod.load_settings(overrides=overrides)
    try:
        res = client.run_job(spec, project=project, force=force, backend=backend, settings=settings,
                             on_progress=_progress_bar())
    finally:
        client.close_clients()
    manifest = res.manifest
    print(("rendered" if res.rendered else "already in storage (use --force to re-render)")
          + f": {manifest['project']}/{manifest['batch_id']} ({res.backend})")
    t = manifest.get("timings", {})
    if res.rendered and t:
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items() if isinstance(v, (int, float))))
    store = settings_mod.make_storage(settings)
    if sheet and isinstance(store, storage_mod.LocalStorage):
        from .contact_sheet import make_sheet

        folder = store.local_path(storage_mod.batch_prefix(manifest["project"], manifest["batch_id"]))
        print(f"batch folder: {folder}")
        path = make_sheet(folder, manifest, os.path.join(settings["storage"]["local_root"],
                                                         f"contact_sheet_{manifest['batch_id']}.png"))
        print(f"contact sheet: {path}")
    return 0


def dry_run(spec: dict, project: str | None, backend: str | None) -> int:
    """Prints the job's batch id and estimate, and whether the config's limits let it through;
    submits nothing. 0 when it would be submitted, 2 (with the refusal) when not."""
    settings = settings_mod.load_settings()
    norm, project, bid = render.prepare(spec, project)
    backend = backend or settings["client"]
    est = budget.estimate_job(norm, settings["runpod"] if backend == "runpod" else None)
    print(f"dry run, nothing submitted: {project}/{bid} ({backend})")
    print(f"estimate: {est['text']}")
    lim = settings["limits"]
    print(f"limits: {lim['max_images']:g} images, {lim['max_megapixels']:g} megapixels, "
          f"{lim['max_render_s']:g} s of estimated render time (config limits.*)")
    client.check_limits(norm, settings, backend)  # SpecError: main prints it and returns 2
    print("within the limits: it would be submitted (unless the batch is already in storage)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pose_factory", description="3D Pose Factory renderer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="render a JobSpec file (JSON or YAML) into a batch folder")
    r.add_argument("spec", help="the JobSpec file")
    r.add_argument("--out", help="a local storage folder (batches go to projects/<p>/batches/<id>/); "
                                 "default: the configured storage")
    r.add_argument("--backend", choices=sorted(client.BACKENDS), help="job client (default: the config's)")
    r.add_argument("--project", help="overrides the spec's project")
    r.add_argument("--force", action="store_true", help="re-render even if the batch exists")
    r.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    r.add_argument("--dry-run", action="store_true",
                   help="print the batch id, the size and time (and RunPod cost) estimate and the limits; submit nothing")
    d = sub.add_parser("demo", help="render the demo batch (3 poses x 4 views, 512x512) and its contact sheet")
    d.add_argument("--out", default="out/demo")
    d.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "demo":
            return run(DEMO_SPEC, a.out, None, a.force, True, "local")
        if a.dry_run:
            return dry_run(spec_mod.load_spec_file(a.spec), a.project, a.backend)
        return run(spec_mod.load_spec_file(a.spec), a.out, a.project, a.force, not a.no_sheet, a.backend)
    except (errors.SpecError, render.RenderError, client.JobFailed, client.ClientConfigError,
            settings_mod.SettingsError, budget.BudgetExceeded, errors.StorageError, OSError,
            json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
