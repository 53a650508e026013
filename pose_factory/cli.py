"""Command line: render a spec file into a batch folder, or the demo batch.

    python -m pose_factory render SPEC.json|yaml --out FOLDER [--project NAME] [--force]
    python -m pose_factory demo [--out FOLDER]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import errors, render, spec as spec_mod, storage as storage_mod

DEMO_SPEC = {
    "schema_version": "1.0",
    "kind": "pose_batch",
    "project": "demo",
    "render": {"width": 512, "height": 512},
    "cameras": {"type": "orbit", "views": 4, "elevation": 10},
    "subjects": [{"type": "mannequin", "height": 1.75, "build": "average",
                  "poses": ["a_pose", {"preset": "waving", "hands": "open"}, "walk_left_step"]}],
}


def _progress_bar(total_hint=1):
    from tqdm import tqdm

    bar = tqdm(total=total_hint, unit="image", desc="queued")
    state = {"name": None}

    def update(p):
        if p["state"] != state["name"]:
            state["name"] = p["state"]
            bar.set_description(p["state"])
            bar.reset(total=max(p["total"], 1))
        bar.n = p["done"]
        bar.refresh()
        if p["state"] == "completed":
            bar.close()

    return update


def run(spec: dict, out: str, project: str | None, force: bool, sheet: bool) -> int:
    store = storage_mod.LocalStorage(out)
    manifest, rendered = render.render_batch(spec, store, project=project, force=force,
                                             on_progress=_progress_bar())
    prefix = storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    folder = store.local_path(prefix)
    print(("rendered" if rendered else "already in storage (use --force to re-render)") + f": {folder}")
    t = manifest.get("timings", {})
    if rendered and t:
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items() if isinstance(v, (int, float))))
    if sheet:
        from .contact_sheet import make_sheet

        path = make_sheet(folder, manifest, os.path.join(out, f"contact_sheet_{manifest['batch_id']}.png"))
        print(f"contact sheet: {path}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pose_factory", description="3D Pose Factory renderer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="render a JobSpec file (JSON or YAML) into a batch folder")
    r.add_argument("spec", help="the JobSpec file")
    r.add_argument("--out", required=True, help="storage root folder (batches go to projects/<p>/batches/<id>/)")
    r.add_argument("--project", help="overrides the spec's project")
    r.add_argument("--force", action="store_true", help="re-render even if the batch exists")
    r.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    d = sub.add_parser("demo", help="render the demo batch (3 poses x 4 views, 512x512) and its contact sheet")
    d.add_argument("--out", default="out/demo")
    d.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "demo":
            return run(DEMO_SPEC, a.out, None, a.force, True)
        return run(spec_mod.load_spec_file(a.spec), a.out, a.project, a.force, not a.no_sheet)
    except (errors.SpecError, render.RenderError, OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
