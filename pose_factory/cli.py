"""The command line (``python -m pose_factory …``, or ``pose-factory …`` when the pack is pip-installed).

    render SPEC [--out FOLDER] [--project NAME] [--force] [--backend local|runpod] [--no-sheet] [--dry-run]
    demo [--out FOLDER] [--force]
    list [PROJECT]                        projects; or a project's batches and where each one is
    pull BATCH | pull-latest [PROJECT]    storage -> data/raw/<project>/<batch>/ (the mirror)
    prepare-batch BATCH                   mirror -> data/working/current_batch/ (+ batch.json)
    archive BATCH | unarchive BATCH       mirror <-> data/archive/
    push FILE|FOLDER                      job specs and manifests -> storage
    doctor                                checks the set-up and says what to fix
    budget                                this month's GPU spend, open and expired reservations
    projects create NAME | list | rename OLD NEW | delete NAME [--force]

BATCH is PROJECT/BATCH_ID, or a batch id: in --project, else in whichever project holds it (when
several do, they are listed and --project is asked for). list and doctor print the data root they
use and why (the config, ComfyUI's pointer, the ComfyUI tree around the pack, or the pack's
data/). Every subcommand takes --json (one JSON object on stdout). Exit codes: 0 ok, 1 failed,
2 usage (a bad argument, name or spec), 3 nothing found.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import errors, render, settings as settings_mod, spec as spec_mod, storage as storage_mod
from .jobs import budget, client

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3

DEMO_SPEC = {
    "schema_version": "1.0",
    "kind": "pose_batch",
    "project": "demo",
    "render": {"width": 512, "height": 512},
    "cameras": {"type": "orbit", "views": 4, "elevation": 10},
    "subjects": [{"type": "mannequin", "height": 1.75, "build": "average",
                  "poses": ["a_pose", {"preset": "waving", "hands": "open"}, "walk_left_step"]}],
}


class UsageError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit(2) would skip --json
        raise UsageError(f"{self.prog}: {message}")


class _Bar:
    """progress(done, total) onto a tqdm bar on stderr, made at the first call (none with --json)."""

    def __init__(self, desc: str, quiet: bool, unit: str = "file"):
        self.desc, self.quiet, self.unit, self.bar = desc, quiet, unit, None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        if total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _job_progress_bar(quiet: bool):
    """A tqdm bar for a render job's progress events, made at the first event (a refused job shows none)."""
    bar = _Bar("queued", quiet, "image")
    state = {"name": None}

    def update(p):
        if p["state"] != state["name"]:
            state["name"] = p["state"]
            bar.close()
            bar.bar, bar.desc = None, p["state"]
        bar(p["done"], max(p["total"], 1))
        if p["state"] == "completed":
            bar.close()

    return update


# --- render, demo ---------------------------------------------------------------------------------
def run(spec: dict, out: str | None, project: str | None, force: bool, sheet: bool, backend: str | None = None,
        quiet: bool = False, config: str | None = None) -> dict:
    """Renders through the job client into the configured storage (a local folder at out, if given)."""
    overrides = {"storage": {"backend": "local", "local_root": os.path.abspath(out)}} if out else None
    settings = settings_mod.load_settings(config, overrides=overrides)
    try:
        res = client.run_job(spec, project=project, force=force, backend=backend, settings=settings,
                             on_progress=_job_progress_bar(quiet))
    finally:
        client.close_clients()
    manifest = res.manifest
    lines = [("rendered" if res.rendered else "already in storage (use --force to re-render)")
             + f": {manifest['project']}/{manifest['batch_id']} ({res.backend})"]
    t = manifest.get("timings", {})
    if res.rendered and t:
        lines.append("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items() if isinstance(v, (int, float))))
    payload = {"project": manifest["project"], "batch_id": manifest["batch_id"], "rendered": res.rendered,
               "backend": res.backend, "timings": t}
    store = settings_mod.make_storage(settings)
    if sheet and isinstance(store, storage_mod.LocalStorage):
        from .render.contact_sheet import make_sheet

        folder = store.local_path(storage_mod.batch_prefix(manifest["project"], manifest["batch_id"]))
        path = make_sheet(folder, manifest, os.path.join(settings["storage"]["local_root"],
                                                         f"contact_sheet_{manifest['batch_id']}.png"))
        lines += [f"batch folder: {folder}", f"contact sheet: {path}"]
        payload.update(folder=str(folder), contact_sheet=str(path))
    payload["_text"] = "\n".join(lines)
    return payload


def _dry_run(a):
    """The job's batch id and estimate, and whether the config's limits let it through; submits
    nothing. Over a limit: the estimate is printed, then the refusal (exit 2)."""
    settings = settings_mod.load_settings(a.config)
    from . import rigs
    from .mesh import props

    raw = spec_mod.load_spec_file(a.spec)  # a prop's mesh file (and a rig's) is hashed, not stored
    where = spec_mod.validate_project_name(a.project or raw.get("project") or "default")
    norm, project, bid = render.prepare(rigs.resolve(props.resolve(raw, None, where), None, where), a.project)
    backend = a.backend or settings["client"]
    est = client.estimate(norm, settings, backend)  # learned from this machine's renders (local)
    lim = settings["limits"]
    lines = [f"dry run, nothing submitted: {project}/{bid} ({backend})", f"estimate: {est['text']}",
             f"limits: {lim['max_images']:g} images, {lim['max_megapixels']:g} megapixels, "
             f"{lim['max_render_s']:g} s of estimated render time (config limits.*)"]
    try:
        client.check_limits(norm, settings, backend)
    except errors.SpecError:
        if not a.json:
            print("\n".join(lines))
        raise
    lines.append("within the limits: it would be submitted (unless the batch is already in storage)")
    return {"project": project, "batch_id": bid, "backend": backend, "estimate": est, "_text": "\n".join(lines)}


def _render(a, settings):
    if a.dry_run:
        return _dry_run(a)
    return run(spec_mod.load_spec_file(a.spec), a.out, a.project, a.force, not a.no_sheet, a.backend, a.json,
               a.config)


def _demo(a, settings):
    """Into --out, else <data root>/demo/ (never the current folder: run from the pack's folder in
    ComfyUI, that is the pack, which ComfyUI-Manager deletes on update)."""
    out = a.out or os.path.join(settings_mod.load_settings(a.config)["data_root"], "demo")
    return run(DEMO_SPEC, out, None, a.force, True, "local", a.json, a.config)


# --- sync -----------------------------------------------------------------------------------------
def _size(n) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _root_line(settings) -> str:
    """Which data root this command uses and why (issue 21.4): printed by list and doctor."""
    return f"data root: {settings['data_root']} (from {settings['data_root_from']})"


def _where_stored(settings) -> str:
    st = settings["storage"]
    return f"storage {st['local_root']}" if st["backend"] == "local" else "the R2 bucket"


def _list(a, settings):
    from .storage import sync

    storage = settings_mod.make_storage(settings)
    root = {"data_root": settings["data_root"], "data_root_from": settings["data_root_from"]}
    if a.project is None:
        rows = sync.project_rows(settings, storage)
        text = _table([["project", "display name", "batches", "size", "where"]]
                      + [[r["name"], r["display_name"], str(r["batches"] if r["batches"] is not None else "-"),
                          _size(r["bytes"]), ",".join(r["where"])
                          + (f" (renaming to {r['renaming_to']})" if r["renaming_to"] else "")] for r in rows]) \
            if rows else f"no projects (in {_where_stored(settings)}, the mirror or the archive)"
        return dict(root, projects=rows, _text=_root_line(settings) + "\n" + text,
                    _exit=EXIT_OK if rows else EXIT_NOT_FOUND)
    project = spec_mod.validate_project_name(a.project)
    rows = sync.batch_rows(settings, storage, project)
    if not rows:
        raise sync.NothingFound(f"project {project!r} has no batches (in {_where_stored(settings)}, the mirror or "
                                f"the archive); {_root_line(settings)}")
    text = _table([["batch", "date", "views x frames", "passes", "size", "state", "where"]]
                  + [[r["batch_id"], (r["created_at"] or "-")[:19], f"{r['views'] or '?'} x {r['frames'] or '?'}",
                      ",".join(r["passes"]) or "-", _size(r["bytes"]), r["state"], ",".join(r["where"])]
                     for r in rows])
    return dict(root, project=project, batches=rows, _text=_root_line(settings) + "\n" + text)


def _batch_arg(a, settings, places=("storage", "mirror", "archive")):
    """(project, batch_id) from BATCH and --project; a bare batch id without --project is looked
    for in every project (in ``places``): found in one, that one; in several, a usage error that
    lists them (issue 21.5)."""
    from .storage import sync

    if a.project is not None or "/" in str(a.batch):
        return sync.parse_batch(a.batch, settings["project"] if a.project is None else a.project)
    return sync.find_batch(settings, lambda: settings_mod.make_storage(settings), a.batch, places)


def _pull_text(r: dict) -> str:
    return (f"pulled {r['project']}/{r['batch_id']} into {r['folder']}: {r['fetched']} files fetched "
            f"({_size(r['fetched_bytes'])}), {r['kept']} already there and verified")


def _pull(a, settings):
    from .storage import sync

    project, bid = _batch_arg(a, settings, ("storage",))
    bar = _Bar(f"pull {bid}", a.json)
    try:
        r = sync.pull(settings, settings_mod.make_storage(settings), project, bid, progress=bar)
    finally:
        bar.close()
    return dict(r, _text=_pull_text(r))


def _pull_latest(a, settings):
    from .storage import sync

    project = spec_mod.validate_project_name(settings["project"] if a.project is None else a.project)
    storage = settings_mod.make_storage(settings)
    bid = sync.latest_batch(settings, storage, project)
    bar = _Bar(f"pull {bid}", a.json)
    try:
        r = sync.pull(settings, storage, project, bid, progress=bar)
    finally:
        bar.close()
    return dict(r, _text=_pull_text(r))


def _prepare(a, settings):
    from .storage import sync

    project, bid = _batch_arg(a, settings, ("mirror", "storage"))
    bar = _Bar(f"pull {bid}", a.json)
    try:
        r = sync.prepare_batch(settings, lambda: settings_mod.make_storage(settings), project, bid, progress=bar)
    finally:
        bar.close()
    r["_text"] = (f"current batch: {project}/{bid} in {r['folder']} ({len(r['files'])} files, {r['link']})"
                  + (" - pulled first" if r["pulled"] else ""))
    return r


def _archive(a, settings):
    from .storage import sync

    r = sync.archive(settings, *_batch_arg(a, settings, ("mirror",)))
    return dict(r, _text=f"archived {r['project']}/{r['batch_id']} to {r['folder']}"
                + (" (it was the current batch: the working set is empty now)" if r["left_working_set"] else ""))


def _unarchive(a, settings):
    from .storage import sync

    r = sync.unarchive(settings, *_batch_arg(a, settings, ("archive",)))
    text = f"restored {r['project']}/{r['batch_id']} to {r['folder']}: {r['verified']} files verified"
    if r["mismatched"]:
        text += (f"; {len(r['mismatched'])} differ from the manifest (e.g. {r['mismatched'][0]}): "
                 f"run pull {r['project']}/{r['batch_id']} to repair them")
    return dict(r, _text=text, _exit=EXIT_FAILED if r["mismatched"] or not r["manifest"] else EXIT_OK)


def _push(a, settings):
    from .storage import sync

    targets = sync.push_targets(a.path)
    if not targets:
        raise sync.NothingFound(f"{a.path!r}: no job spec or batch manifest found")
    storage = settings_mod.make_storage(settings)
    done = []
    for kind, path, raw in targets:
        if kind == "spec":
            done.append(dict(sync.push_spec(storage, raw), file=str(path)))
        else:
            bar = _Bar(f"push {raw.get('batch_id')}", a.json)
            try:
                done.append(dict(sync.push_manifest(storage, raw, path.parent, progress=bar), file=str(path)))
            finally:
                bar.close()
    text = "\n".join(f"pushed {d['kind']} {d['file']} -> {d['key']}" for d in done)
    return {"pushed": done, "_text": text}


def _doctor(a, settings):
    from . import doctor

    checks = doctor.run_checks(a.config, worker=not a.no_worker)
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['detail']}")
        if not c["ok"]:
            lines.append(f"       fix: {c['fix']}")
    failed = [c["check"] for c in checks if not c["ok"]]
    lines.append(f"{len(failed)} problem(s): {', '.join(failed)}" if failed else "everything looks fine")
    return {"checks": checks, "ok": not failed, "_text": "\n".join(lines), "_exit": EXIT_FAILED if failed else EXIT_OK}


def _projects(a, settings):
    from .storage import index, projects, sync

    storage = settings_mod.make_storage(settings)
    mirror = settings_mod.data_dirs(settings)["mirror"]
    if a.action == "list":
        rows = projects.list_projects(storage)
        text = _table([["project", "display name", "created", "batches", "size"]]
                      + [[r["name"], r["display_name"], (r["created_at"] or "-")[:10], str(r["batches"]),
                          _size(r["bytes"])] for r in rows]) if rows else "no projects"
        return {"projects": rows, "_text": text, "_exit": EXIT_OK if rows else EXIT_NOT_FOUND}
    if a.action == "create":
        r = projects.create(storage, spec_mod.validate_project_name(a.name), a.display_name)
        index.add_project(mirror, a.name)
        return dict(r, _text=f"created project {a.name!r}")
    if a.action == "rename":
        old, new = spec_mod.validate_project_name(a.old), spec_mod.validate_project_name(a.new)
        bar = _Bar(f"rename {old}", a.json, "object")
        try:
            r = projects.rename(storage, old, new, workers=settings["sync"]["parallel_transfers"], progress=bar)
        finally:
            bar.close()
        sync.rename_local(settings, old, new)
        return dict(r, _text=f"renamed project {old!r} to {new!r}: {r['objects']} objects"
                    + (" (an interrupted rename, finished)" if r["resumed"] else ""))
    name = spec_mod.validate_project_name(a.name)
    n = projects.delete(storage, name, force=a.force)
    return {"project": name, "deleted_objects": n, "_text": f"deleted project {name!r} ({n} objects)"}


def _budget(a, settings):
    """The month's spend, the open reservations (owner, expiry) and the expired ones, releasing
    those first (each is logged)."""
    ledger = budget.Ledger(settings["budget"]["ledger_path"], settings["budget"]["monthly_gpu_limit_usd"])
    released = ledger.release_expired()
    open_ = ledger.reservations()
    earlier = ledger.expired()[len(released):][:20]
    lines = [f"GPU budget {ledger.spent_this_month():.4f} USD spent this month, {ledger.reserved_usd():.4f} USD "
             f"reserved, {ledger.remaining_usd():.4f} USD left of {ledger.monthly_limit_usd:.2f} USD "
             f"(ledger {ledger.path})", f"open reservations: {len(open_)}"]
    lines += [f"  {r['job_key']}  {r['estimate_usd']:.4f} USD  owner {r['owner'] or 'unknown'}  "
              f"reserved {r['reserved_at']}  expires {r['expires_at']}" for r in open_]
    lines += [f"released now (expired): {r['job_key']}  {r['estimate_usd']:.4f} USD  owner {r['owner'] or 'unknown'}  "
              f"expired {r['expires_at']}" for r in released]
    if earlier:
        lines.append("released earlier (expired, never settled):")
        lines += [f"  {r['job_key']}  {r['estimate_usd']:.4f} USD  owner {r['owner'] or 'unknown'}  "
                  f"released {r['released_at']}" for r in earlier]
    return {"spent_usd": ledger.spent_this_month(), "reserved_usd": ledger.reserved_usd(),
            "remaining_usd": ledger.remaining_usd(), "limit_usd": ledger.monthly_limit_usd,
            "open": open_, "released_now": released, "released_earlier": earlier, "_text": "\n".join(lines)}


# --- the parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout (for scripts)")
    prog = "pose-factory" if os.path.basename(sys.argv[0] or "").startswith("pose-factory") else "python -m pose_factory"
    ap = _Parser(prog=prog, description="3D Pose Factory: render, sync and projects",
                 epilog="exit codes: 0 ok, 1 failed, 2 usage, 3 nothing found")
    ap.add_argument("--config", help="the settings file (default: $POSE_FACTORY_CONFIG, else config/local.yaml)")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def add(name, fn, help, batch=False):
        p = sub.add_parser(name, help=help, parents=[common])
        p.set_defaults(fn=fn)
        if batch:
            p.add_argument("batch", help="a batch id, or PROJECT/BATCH_ID")
            p.add_argument("--project", help="the batch's project (default: the project that holds the batch id; "
                                             "when several do, they are listed and this is required)")
        return p

    r = add("render", _render, "render a JobSpec file (JSON or YAML) into a batch folder")
    r.add_argument("spec", help="the JobSpec file")
    r.add_argument("--out", help="a local storage folder (batches go to projects/<p>/batches/<id>/); "
                                 "default: the configured storage")
    r.add_argument("--backend", choices=sorted(client.BACKENDS), help="job client (default: the config's)")
    r.add_argument("--project", help="overrides the spec's project")
    r.add_argument("--force", action="store_true", help="re-render even if the batch exists")
    r.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    r.add_argument("--dry-run", action="store_true",
                   help="print the batch id, the size and time (and RunPod cost) estimate and the limits; submit nothing")
    d = add("demo", _demo, "render the demo batch (3 poses x 4 views, 512x512) and its contact sheet")
    d.add_argument("--out", help="a local storage folder (default: <data root>/demo, see list or doctor)")
    d.add_argument("--force", action="store_true")
    add("list", _list, "projects, or a project's batches (date, views x frames, passes, size, state, where)") \
        .add_argument("project", nargs="?", help="list this project's batches")
    add("pull", _pull, "fetch a batch into the mirror data/raw/<project>/<batch>/ (only what is missing "
                       "or changed)", batch=True)
    add("pull-latest", _pull_latest, "pull the project's newest complete batch") \
        .add_argument("project", nargs="?", help="default: the config's project")
    add("prepare-batch", _prepare, "make a batch the current batch (data/working/current_batch/)", batch=True)
    add("archive", _archive, "move a batch from the mirror to data/archive/ (out of the working set)", batch=True)
    add("unarchive", _unarchive, "move an archived batch back into the mirror, verified", batch=True)
    add("push", _push, "upload job specs and batch manifests (with their missing files) to storage") \
        .add_argument("path", help="a spec or manifest file, or a folder of them")
    add("doctor", _doctor, "check config, credentials, storage, the worker Python and RunPod") \
        .add_argument("--no-worker", action="store_true", help="skip the worker Python check (it imports bpy)")
    p = add("projects", _projects, "create, list, rename or delete projects")
    psub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    c = psub.add_parser("create", help="create a project (project.json in storage)", parents=[common])
    c.add_argument("name", help="lowercase letters, digits, '-', '_' (1-64)")
    c.add_argument("--display-name", help="a free-form name shown in lists")
    psub.add_parser("list", help="projects in storage", parents=[common])
    rn = psub.add_parser("rename", help="rename a project (resumes an interrupted rename)", parents=[common])
    rn.add_argument("old")
    rn.add_argument("new")
    dl = psub.add_parser("delete", help="delete a project (refused when not empty, unless --force)", parents=[common])
    dl.add_argument("name")
    dl.add_argument("--force", action="store_true", help="delete it with every batch in it")
    add("budget", _budget, "this month's GPU spend and the open budget reservations (owner, expiry); "
                           "releases expired ones")
    return ap


def _exit_code(e: BaseException) -> int | None:
    from .storage.projects import ProjectError

    if isinstance(e, LookupError):
        return EXIT_NOT_FOUND
    if isinstance(e, (UsageError, errors.SpecError, settings_mod.SettingsError, client.ClientConfigError,
                      json.JSONDecodeError)):
        return EXIT_USAGE
    if isinstance(e, (errors.StorageError, errors.ManifestError, ProjectError, render.RenderError, client.JobFailed,
                      budget.BudgetExceeded, budget.LedgerError, OSError)):
        return EXIT_FAILED
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    try:
        a = build_parser().parse_args(argv)
        settings = None if a.cmd in ("render", "demo", "doctor") else settings_mod.load_settings(a.config)
        payload = a.fn(a, settings)
    except BaseException as e:  # noqa: BLE001  mapped to an exit code, or re-raised
        code = _exit_code(e)
        if code is None:
            raise
        if as_json:
            print(json.dumps({"ok": False, "error": str(e), "exit_code": code}))
        else:
            print(f"error: {e}", file=sys.stderr)
        return code
    code = payload.pop("_exit", EXIT_OK)
    text = payload.pop("_text", "")
    if as_json:
        print(json.dumps(dict(payload, ok=code == EXIT_OK, exit_code=code), default=str))
    elif text:
        print(text, file=sys.stdout if code != EXIT_FAILED else sys.stderr)
    return code
