"""Server routes under /pose_factory/ (DESIGN.md §5: ``PromptServer.instance.routes``).

    GET  /pose_factory/projects                                   {"projects": [...], "default": ...}
    POST /pose_factory/projects   JSON {"name", "display_name"?}  creates a project in storage
    POST /pose_factory/projects/{project}/rename   JSON {"to"}    renames it (every object moved, verified)
    GET  /pose_factory/projects/{project}/batches                 {"project", "batches": [{batch_id, summary…, thumbnail}]}
    GET  /pose_factory/batches/{project}/{batch_id}/manifest      the manifest (storage, else the local cache)
    GET  /pose_factory/batches/{project}/{batch_id}/thumbnail     JPEG grid of frame 0's views (?pass=shaded|openpose|…)
    GET  /pose_factory/loader_batches                             {"pose": [...], "depth_normal": [...]} "project/batch" choices
    GET  /pose_factory/jobs                                       {"jobs": [...]} running in this process
    POST /pose_factory/refresh   optional JSON {"project"}        re-lists storage into the local index
    POST /pose_factory/3d/from-image, GET …/3d/status/{job_id}, GET …/3d/download/{job_id}: nodes/mesh_routes.py
    GET  /pose_factory/viewer/mesh?height=&build=&shape=         a mannequin's rest mesh (pose_factory.viewer.mesh)
    GET  /pose_factory/viewer/rigmesh?key=                        a custom rig's rest mesh (pose_factory.viewer.rigview)
    GET  /pose_factory/viewer/limits                              posable joints, DOFs and limits, presets
    POST /pose_factory/viewer/scene   JSON {subject, poses, frame, cameras, render}   posed joints, keypoints, cameras

The logic is plain functions taking settings/storage (``list_projects``, ``list_project_batches``,
``get_manifest``, ``get_thumbnail``, ``list_jobs``, ``refresh``) that raise ``RouteError(status,
message)``; the aiohttp handlers made by ``register(routes)`` are thin wrappers that run them in a
thread and answer ``{"error": "..."}`` with that status. ComfyUI's ``server`` and aiohttp are
imported lazily, so the package imports without ComfyUI; the routes are registered only when
``server.PromptServer.instance`` exists.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from . import _common  # noqa: F401  (the package's __init__ imports it first anyway: pose_factory on sys.path)
from pose_factory.storage import download  # noqa: E402
from pose_factory.storage import index as index_mod  # noqa: E402
from pose_factory import loading  # noqa: E402
from pose_factory.storage import projects as projects_mod  # noqa: E402
from pose_factory import settings as settings_mod  # noqa: E402
from pose_factory import viewer  # noqa: E402
from pose_factory.errors import SpecError, StorageError, echo  # noqa: E402
from pose_factory.imageio import PNG_HEADER_BYTES  # noqa: E402
from pose_factory.parsing import nesting_depth  # noqa: E402
from pose_factory.render.hide import body_hidden  # noqa: E402
from pose_factory.spec import validate_project_name  # noqa: E402
from pose_factory.storage import batch_prefix, read_manifest  # noqa: E402

log = logging.getLogger("pose_factory.routes")

PREFIX = "/pose_factory"
BATCH_ID_RE = re.compile(r"[0-9a-f]{16}")
BATCH_ID_RULE = "16 lowercase hexadecimal characters (0-9, a-f)"
THUMB_PASSES = ("shaded", "openpose", "depth", "normal", "seg")  # preferred order for the thumbnail
THUMB_TILE = 128          # longest side of one view in the grid, pixels
THUMB_MAX_VIEWS = 16      # a 64-view orbit shows its first 16 views
THUMB_DIR = ".thumbnails"  # under the cache root; a project name cannot start with "."


ECHO_MAX = 40             # an error repeats at most this many characters of what it was given


def echo(value) -> str:
    """What an error message repeats of a request's value: its repr, a long one cut to its first
    ECHO_MAX characters and its length."""
    text = repr(value)
    if len(text) <= ECHO_MAX:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as text"
    return f"{text[:ECHO_MAX]}... ({size})"


class RouteError(Exception):
    """An answer other than 200: ``status`` and a message naming what is wrong and what is allowed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# --- validation -----------------------------------------------------------------------------------
def check_project(project, field: str = "project") -> str:
    try:
        return validate_project_name(project)
    except ValueError as e:  # "project: got 'X' (as a project name: 'x'), allowed: ..."
        raise RouteError(400, field + str(e)[len("project"):]) from None


def check_batch_id(batch_id) -> str:
    if not isinstance(batch_id, str) or not BATCH_ID_RE.fullmatch(batch_id):
        raise RouteError(400, f"batch_id: got {echo(batch_id)}, allowed: {BATCH_ID_RULE}")
    return batch_id


def thumbnail_url(project: str, batch_id: str) -> str:
    return f"{PREFIX}/batches/{project}/{batch_id}/thumbnail"


# --- the logic (no aiohttp, no ComfyUI) -------------------------------------------------------------
def list_projects(settings: dict) -> dict:
    """Projects in the local index (no network), and the configured default project."""
    return {"projects": index_mod.projects(settings["storage"]["cache_root"]), "default": settings["project"]}


def list_project_batches(settings: dict, project) -> dict:
    """The project's batches in the local index, newest first: id, summary and a thumbnail URL."""
    project = check_project(project)
    cache_root = settings["storage"]["cache_root"]
    known = index_mod.load(cache_root).get(project, {})
    out = [dict(known[bid], batch_id=bid, thumbnail=thumbnail_url(project, bid))
           for bid in index_mod.batches(cache_root, project)]
    return {"project": project, "batches": out}


def loader_batches(settings: dict) -> dict:
    """Each loader's batch dropdown from the local index (no network): every project's batches it
    can load (loading.LOADER_NEEDS) as "project/batch_id", newest first. The front end refreshes
    the loaders' lists from it after a render, so a new batch is offered without a page reload."""
    cache_root = settings["storage"]["cache_root"]
    return {loader: index_mod.choices(cache_root, lambda s, loader=loader: loading.loadable(s.get("passes"), loader))
            for loader in loading.LOADER_NEEDS}


def get_manifest(settings: dict, storage, project, batch_id) -> dict:
    """The batch's manifest from storage; the local cache's copy when storage cannot be reached.
    404 when neither has it (unknown or incomplete batch)."""
    project, batch_id = check_project(project), check_batch_id(batch_id)
    try:
        m = read_manifest(storage, project, batch_id)
    except ValueError as e:  # a manifest that fails validation
        raise RouteError(502, f"batch {project}/{batch_id}: stored manifest is not valid ({e})") from None
    except (StorageError, OSError) as e:
        m = download.cached_manifest(settings["storage"]["cache_root"], project, batch_id)  # validated
        if m is None:
            raise RouteError(502, f"storage could not be read ({e}) and the cache has no copy of "
                                  f"{project}/{batch_id}") from None
    if m is None:
        raise RouteError(404, f"batch {project}/{batch_id} not found: no manifest in storage "
                              "(unknown, or not complete yet)")
    return m


def _image_passes(manifest: dict) -> list[str]:
    return sorted({name for e in manifest["entries"] for name, f in e["files"].items()
                   if f["key"].endswith(".png") and name not in ("depth16", "parts", "mask")})


def _read_file(settings: dict, storage, project: str, batch_id: str, info: dict, stamps: dict) -> bytes:
    """A batch file: from the download cache when it holds the manifest's bytes (stamped or
    hashed: download.verified_file), else from storage, checked against the manifest's hash."""
    cached = download.verified_file(Path(settings["storage"]["cache_root"]) / project / batch_id, info, stamps)
    if cached is not None:
        try:
            return cached.read_bytes()
        except OSError:
            pass
    data = storage.get_bytes(batch_prefix(project, batch_id) + info["key"])
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise StorageError(f"{info['key']} in storage does not match the manifest's sha256 {info['sha256'][:12]}…")
    return data


def _grid_jpeg(images: list, tile: int) -> bytes:
    from PIL import Image

    tiles = []
    for im in images:
        im = im.convert("RGB")
        im.thumbnail((tile, tile), Image.BILINEAR)
        tiles.append(im)
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    tw, th = max(t.width for t in tiles), max(t.height for t in tiles)
    sheet = Image.new("RGB", (cols * tw, rows * th), (24, 24, 24))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * tw + (tw - t.width) // 2, (i // cols) * th + (th - t.height) // 2))
    buf = io.BytesIO()
    sheet.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def get_thumbnail(settings: dict, storage, project, batch_id, pass_name=None) -> bytes:
    """A small JPEG grid of frame 0's views (up to 16) in the shaded pass (else openpose, depth…,
    or ``pass_name``). Cached on disk under <cache_root>/.thumbnails/, named by the
    images' sha256, so a forced re-render never serves an old picture."""
    manifest = get_manifest(settings, storage, project, batch_id)
    try:
        loading.check_manifest_limits(manifest, settings.get("limits"))
    except ValueError as e:
        raise RouteError(422, f"batch {project}/{batch_id}: {e}") from None
    available = _image_passes(manifest)
    if pass_name is None:
        pass_name = next((p for p in THUMB_PASSES if p in available), available[0] if available else None)
        if pass_name is None:
            raise RouteError(404, f"batch {project}/{batch_id} has no image pass to show")
    elif pass_name not in available:
        raise RouteError(400, f"pass: got {echo(pass_name)}, allowed: one of this batch's image passes "
                              f"({', '.join(available)})")
    frame0 = sorted((e for e in manifest["entries"] if e["frame"] == 0 and pass_name in e["files"]),
                    key=lambda e: e["view"])[:THUMB_MAX_VIEWS]
    if not frame0:
        raise RouteError(404, f"batch {project}/{batch_id} has no {pass_name} image for frame 0")
    content = hashlib.sha256("".join(e["files"][pass_name]["sha256"] for e in frame0).encode()).hexdigest()
    cache = Path(settings["storage"]["cache_root"]) / THUMB_DIR / project / f"{batch_id}_{pass_name}_{content[:12]}.jpg"
    try:
        return cache.read_bytes()
    except OSError:
        pass
    from PIL import Image

    images, stamps = [], download.load_stamps(Path(settings["storage"]["cache_root"]) / project / batch_id)
    try:
        for e in frame0:
            info = e["files"][pass_name]
            raw = _read_file(settings, storage, project, batch_id, info, stamps)
            # a PNG bomb is refused from its header, before PIL decodes (and allocates) anything
            loading.check_png_header(raw[:PNG_HEADER_BYTES], info["key"], manifest, pass_name)
            images.append(Image.open(io.BytesIO(raw)))
        data = _grid_jpeg(images, THUMB_TILE)
    except loading.ImageHeaderError as e:
        raise RouteError(422, f"batch {project}/{batch_id}: {e}") from None
    except (StorageError, OSError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise RouteError(502, f"batch {project}/{batch_id}: could not read its {pass_name} images ({e})") from None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".thumb.", suffix=".tmp")  # one per request
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, cache)
        for old in cache.parent.glob(f"{batch_id}_{pass_name}_*.jpg"):  # from before a forced re-render
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError as e:  # a read-only cache still serves the picture
        log.warning("pose_factory: could not cache thumbnail %s: %s", cache, e)
    return data


def list_jobs() -> dict:
    """Jobs running in this process (pose_factory.jobs.client.active_jobs)."""
    try:
        from pose_factory.jobs import client

        jobs = client.active_jobs()
    except (ImportError, AttributeError):  # a core without the job client
        jobs = []
    return {"jobs": jobs}


def refresh(settings: dict, storage, body=None) -> dict:
    """Re-lists storage into the local index: every project under projects/, or only
    body["project"] (indexed only if storage has a batch of it: unknown names never fill the
    index). Returns the projects; for each re-listed project its batch ids (newest first) with
    their summaries; and ``choices``, the loaders' batch dropdown entries ("project/batch_id")."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise RouteError(400, f"body: got {type(body).__name__}, allowed: a JSON object {{\"project\": name}} or nothing")
    unknown = set(body) - {"project"}
    if unknown:
        raise RouteError(400, f"body: unknown key(s) {echo(sorted(unknown))}, allowed: project")
    project = body.get("project")
    names = None if project is None else [check_project(project)]
    cache_root = settings["storage"]["cache_root"]
    try:
        projects = index_mod.refresh(cache_root, storage, names)
    except (StorageError, OSError) as e:
        raise RouteError(502, f"storage could not be listed ({e})") from None
    refreshed = names if names is not None else sorted(projects)
    return {"projects": sorted(projects),
            "batches": {p: list_project_batches(settings, p)["batches"] for p in refreshed},
            "choices": index_mod.choices(cache_root), "loaders": loader_batches(settings)}


MAX_BODY_DEPTH = 64  # levels of nesting in a route's JSON body (a scene's fragments need a handful)
VIEWER_MAX_BODY = 256 * 1024  # bytes of a viewer scene request (256 poses of hand-set joints fit)


def viewer_mesh(settings: dict, height=None, build=None, shape=None) -> dict:
    """A mannequin's rest mesh for the 3D viewer (query strings: height in metres, build, shape: a
    body-shape preset name or its JSON object, as the scene gives it)."""
    try:
        h = 1.75 if height in (None, "") else float(height)
    except ValueError:
        raise RouteError(400, f"height: got {echo(height)}, allowed: a number of metres") from None
    if shape in (None, ""):
        shape = None
    elif shape.lstrip().startswith("{"):
        try:
            shape = json.loads(shape)
        except ValueError:
            raise RouteError(400, f"shape: got {echo(shape)}, allowed: a preset name or a JSON object") from None
    try:
        return viewer.mesh(h, build or "average", shape)
    except SpecError as e:
        raise RouteError(400, str(e)) from None


def viewer_rig_mesh(settings: dict, key=None) -> dict:
    """A custom rig's rest mesh for the 3D viewer, by the key its scene gave (pose_factory.viewer.rigview)."""
    from pose_factory.viewer import rigview

    view = rigview.loaded(key)
    if view is None:
        raise RouteError(404, f"key: got {echo(key)}, allowed: the key of a rig the viewer's scene loaded (ask the scene again)")
    return view.mesh()


def viewer_limits(settings: dict) -> dict:
    return viewer.limits()


VIEWER_MAX_NODES = 80  # spec nodes in one scene request (a Pose List of 64 and its neighbours)
VIEWER_INPUTS = {"subject": "POSE_FACTORY_SUBJECT", "poses": "POSE_FACTORY_POSES", "cameras": "POSE_FACTORY_CAMERAS"}


def _spec_nodes() -> dict:
    """The nodes whose function the viewer runs to make a piece of the scene: the spec nodes and
    the Scene node (people placed on the floor)."""
    from . import people_nodes, spec_nodes

    return {**spec_nodes.NODE_CLASS_MAPPINGS, "PoseFactoryScene": people_nodes.PoseFactoryScene}


def _custom_rig_subject(inputs: dict, where: str) -> dict:
    """A Custom Rig's subject as its node makes it, without its rig report (the viewer reads the
    file itself: pose_factory.viewer.rigview). Widgets the node refuses (no rig file, a path that is
    none) give a subject marked "unreadable": the viewer lists that person, undrawn, and says why
    (the node itself refuses it when the prompt is queued), rather than failing the whole scene."""
    from . import people_nodes

    try:
        return people_nodes.rig_subject(**{k: inputs.get(k) for k in ("rig_file", "path_or_key", "bone_map",
                                                                          "custom_map", "height")})
    except SpecError as e:
        return {"type": "rig", "unreadable": f"Custom Rig {e}"}


class _RunTimeOnly(Exception):
    """A piece of the scene made by a node the viewer cannot run (a BVH clip, a photo fit, a mesh
    job's cameras): it is known only when the prompt runs."""


def _run_time_only(class_type) -> str | None:
    """The display name of one of our nodes that makes a spec value but only when the prompt runs."""
    from . import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    if isinstance(class_type, str) and class_type in NODE_CLASS_MAPPINGS and class_type not in _spec_nodes():
        return NODE_DISPLAY_NAME_MAPPINGS.get(class_type, class_type)
    return None


def evaluate_fragment(fragment, want: str, budget: list, where: str):
    """The value of an API-format fragment {"class_type", "inputs"} of spec nodes (a linked input
    is a nested fragment): the nodes' own functions make it, exactly as when the prompt runs."""
    if not isinstance(fragment, dict) or not {"class_type", "inputs"} <= set(fragment) <= {"class_type", "inputs", "result"} \
            or not isinstance(fragment["inputs"], dict):
        raise RouteError(400, f"{where}: got {echo(fragment)}, allowed: {{\"class_type\": spec node, \"inputs\": {{...}}}}")
    nodes = _spec_nodes()
    cls = nodes.get(fragment["class_type"])
    if fragment["class_type"] == "PoseFactoryCustomRig" and want == "POSE_FACTORY_SUBJECT":
        budget[0] -= 1
        return _custom_rig_subject(fragment["inputs"], where)
    if cls is None and _run_time_only(fragment["class_type"]):
        return _ran(fragment, want)
    if cls is None or cls.RETURN_TYPES != (want,):
        makers = sorted(n for n, c in nodes.items() if c.RETURN_TYPES == (want,))
        raise RouteError(400, f"{where}: got {echo(fragment['class_type'])}, allowed: a node that makes {want} "
                              f"({', '.join(makers)}); the viewer shows spec nodes only")
    budget[0] -= 1
    if budget[0] < 0:
        raise RouteError(400, f"{where}: more than {VIEWER_MAX_NODES} nodes, allowed: at most {VIEWER_MAX_NODES}")
    spec = {**cls.INPUT_TYPES().get("required", {}), **cls.INPUT_TYPES().get("optional", {})}
    args = {}
    for name, value in fragment["inputs"].items():
        if name not in spec:
            raise RouteError(400, f"{where}.{name}: unknown input of {fragment['class_type']}, allowed: {', '.join(spec)}")
        kind = spec[name][0]
        args[name] = evaluate_fragment(value, kind, budget, f"{where}.{name}") if isinstance(kind, str) \
            and kind.startswith("POSE_FACTORY_") else value
    missing = [n for n in cls.INPUT_TYPES().get("required", {}) if n not in args]
    if missing:
        raise RouteError(400, f"{where}: {fragment['class_type']} needs {', '.join(missing)} (not linked or not given)")
    try:
        return getattr(cls(), cls.FUNCTION)(**args)[0]
    except SpecError as e:
        raise RouteError(400, f"{where} ({fragment['class_type']}) {e}") from None


def _ran(fragment: dict, want: str):
    """The value a run-time-only node made when the prompt last ran (its UI output's key, which the
    browser sends as "result"), or _RunTimeOnly when there is none."""
    if want == "POSE_FACTORY_POSES" and "result" in fragment:
        poses = viewer.recall(fragment["result"])
        if poses is not None:
            return poses
    raise _RunTimeOnly(_run_time_only(fragment["class_type"]))


def viewer_props(fragment, notes: list) -> list:
    """The props of a chain of Pose Prop nodes (API-format fragments, "props" linking the next) for
    the viewer: each {"file": {"type": "input"|"output", "subfolder", "filename"} (the mesh file
    under ComfyUI's folders, fetched by the browser from /view), "format", "matrix" (4x4, row-major:
    scale, XYZ Euler rotation, then location, as pose_factory.mesh.props.place)}; a prop whose mesh
    is made only when the prompt runs is left out and said in notes."""
    from pose_factory.mesh import props as props_mod
    from . import mesh_nodes

    out, where, seen = [], "props", 0
    while fragment is not None:
        seen += 1
        if seen > props_mod.MAX_PROPS or not isinstance(fragment, dict) or not isinstance(fragment.get("inputs"), dict) \
                or fragment.get("class_type") != "PoseFactoryPoseProp":
            raise RouteError(400, f"{where}: got {echo(fragment)[:80]}, allowed: Pose Prop nodes (at most {props_mod.MAX_PROPS})")
        inputs = dict(fragment["inputs"])
        fragment = inputs.pop("props", None)
        linked = [k for k in ("mesh", "pose_factory_mesh") if k in inputs]
        if linked or not str(inputs.get("mesh_file") or "").strip():
            notes.append(f"a prop's {(linked or ['mesh'])[0]}: known when the prompt runs, not drawn")
            continue
        try:
            (made,) = mesh_nodes.PoseFactoryPoseProp().make(**inputs)[0][-1:]
        except (SpecError, TypeError) as e:
            raise RouteError(400, f"{where} (Pose Prop) {e}") from None
        full = made["mesh"]["file"]
        for kind, root in mesh_nodes.comfy_folders():
            if os.path.commonpath([root, full]) == root:
                sub, name = os.path.split(os.path.relpath(full, root))
                break
        m = np.eye(4)
        m[:3, :3] = props_mod.euler_xyz(made["rotation"]) * np.asarray(made["scale"])
        m[:3, 3] = made["location"]
        out.insert(0, {"file": {"type": kind, "subfolder": sub.replace(os.sep, "/"), "filename": name},
                       "format": os.path.splitext(name)[1].lower().lstrip("."), "shading": made["shading"],
                       "matrix": np.round(m, 7).tolist()})
        where += ".props"
    return out


def viewer_scene(settings: dict, body) -> dict:
    """The viewer's scene (pose_factory.viewer.scene) of a graph's spec nodes: body {"subject",
    "poses", "cameras": API-format fragments or null (defaults), "width", "height", "frame",
    "hide": the hide list of the Load Pose Batch the request feeds (optional)}; 400 naming the
    wrong node and field. With hide, each person gets "hidden": the body points its OpenPose
    preview leaves out (render.hide.body_hidden); a list the loader would refuse is a note, and
    hides nothing."""
    body = _body(body, {"subject": False, "poses": False, "cameras": False, "width": False, "height": False,
                        "frame": False, "props": False, "hide": False})
    budget = [VIEWER_MAX_NODES]
    pieces, notes = {}, []
    for name, kind in VIEWER_INPUTS.items():
        try:
            pieces[name] = None if body.get(name) is None else evaluate_fragment(body[name], kind, budget, name)
        except _RunTimeOnly as e:  # shown with the default until the prompt runs, and said so
            pieces[name] = None
            notes.append(f"{name} from {e}: known when the prompt runs, showing the default")
    render = {k: body[k] for k in ("width", "height") if body.get(k) is not None}
    try:
        scene = viewer.scene({"subject": pieces["subject"], "poses": pieces["poses"], "cameras": pieces["cameras"],
                              "render": render or None, "frame": body.get("frame", 0)},
                             worker_python=settings.get("worker_python") or None)
    except SpecError as e:
        raise RouteError(400, str(e)) from None
    if body.get("props") is not None:
        scene["props"] = viewer_props(body["props"], notes)
    if body.get("hide"):
        try:
            hidden = body_hidden(body["hide"], len(scene.get("people", [])))
        except ValueError as e:
            notes.append(f"Load Pose Batch's {e}; the preview hides nothing")
        else:
            for person, points in zip(scene.get("people", []), hidden):
                person["hidden"] = points
    notes = scene.pop("notes", []) + notes
    return dict(scene, notes=notes) if notes else scene


def _body(body, allowed: dict) -> dict:
    """The JSON object body with only the allowed keys ({key: required})."""
    if not isinstance(body, dict):
        raise RouteError(400, f"body: got {type(body).__name__}, allowed: a JSON object with "
                              + ", ".join(f"{k}{'' if req else ' (optional)'}" for k, req in allowed.items()))
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RouteError(400, f"body: unknown key(s) {unknown}, allowed: {', '.join(allowed)}")
    for k, req in allowed.items():
        if req and k not in body:
            raise RouteError(400, f"body: {k!r} is missing")
    return body


def create_project(settings: dict, storage, body) -> dict:
    """Creates projects/<name>/project.json in storage and lists the project in the local index.
    400 for a bad name (the message shows the slug it would use), 409 when it exists."""
    body = _body(body, {"name": True, "display_name": False})
    name = check_project(body["name"], "name")
    try:
        made = projects_mod.create(storage, name, body.get("display_name"))
    except projects_mod.ProjectError as e:
        raise RouteError(409, str(e)) from None
    except (StorageError, OSError) as e:
        raise RouteError(502, f"storage could not be written ({e})") from None
    index_mod.add_project(settings["storage"]["cache_root"], name)
    return {"project": made, "projects": index_mod.projects(settings["storage"]["cache_root"])}


def rename_project(settings: dict, storage, project, body) -> dict:
    """Renames a project in storage (resuming an interrupted rename to the same name), then its
    local mirror, archive and index entries. 404 unknown project, 409 target exists."""
    from pose_factory.storage import sync

    old = check_project(project)
    new = check_project(_body(body, {"to": True})["to"], "to")
    try:
        done = projects_mod.rename(storage, old, new, workers=settings["sync"]["parallel_transfers"])
    except projects_mod.ProjectNotFound as e:
        raise RouteError(404, str(e)) from None
    except projects_mod.ProjectError as e:
        raise RouteError(409, str(e)) from None
    except (StorageError, OSError) as e:
        raise RouteError(502, f"storage: {e}; run the same rename again to finish it") from None
    sync.rename_local(settings, old, new)
    return dict(done, projects=index_mod.projects(settings["storage"]["cache_root"]))


# --- aiohttp wrappers -----------------------------------------------------------------------------
def default_context(need_storage: bool):
    """The pack's settings and, when asked, its configured storage (read per request, so a
    changed config/local.yaml or .env takes effect without a restart)."""
    settings = settings_mod.load_settings()
    return settings, (settings_mod.make_storage(settings) if need_storage else None)


def _run(context, fn, need_storage: bool, *args):
    """Loads settings (and storage) through context, calls fn; returns (status, payload)."""
    try:
        settings, storage = context(need_storage)
        if need_storage:
            return 200, fn(settings, storage, *args)
        return 200, fn(settings, *args)
    except RouteError as e:
        return e.status, {"error": e.message}
    except settings_mod.SettingsError as e:
        return 500, {"error": f"pose_factory settings: {e}"}
    except Exception as e:  # never a bare 500 page: the UI shows the message
        log.exception("pose_factory route failed")
        text = f"{type(e).__name__}: {e}"
        return 500, {"error": text if len(text) <= 300 else text[:300] + "..."}


def register(routes, context=None) -> None:
    """Adds the handlers to an aiohttp RouteTableDef (PromptServer.instance.routes in ComfyUI).
    context(need_storage) -> (settings, storage): default_context, or a stand-in for tests."""
    import asyncio

    from aiohttp import web

    context = context or default_context

    async def call(fn, need_storage, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _run, context, fn, need_storage, *args)

    def answer(status, payload):
        return web.json_response(payload, status=status)

    @routes.get(PREFIX + "/projects")
    async def _projects(request):
        return answer(*await call(list_projects, False))

    async def json_body(request):
        """The request's JSON body (None when empty) or _BAD_JSON when it is not JSON; a body nested
        deeper than MAX_BODY_DEPTH answers 400 itself, for every route that reads one."""
        raw = await request.read() if request.can_read_body else b""
        try:
            body = json.loads(raw) if raw.strip() else None
        except RecursionError:  # deeper than the parser goes
            body = _TOO_DEEP
        except ValueError:
            return _BAD_JSON
        if body is _TOO_DEEP or nesting_depth(body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"body: JSON nested more than {MAX_BODY_DEPTH} levels "
                                                               f"deep, allowed: at most {MAX_BODY_DEPTH} levels"}),
                                     content_type="application/json")
        return body

    @routes.post(PREFIX + "/projects")
    async def _create(request):
        body = await json_body(request)
        if body is _BAD_JSON:
            return answer(400, {"error": "body: not valid JSON, allowed: {\"name\": ..., \"display_name\": ...}"})
        return answer(*await call(create_project, True, body))

    @routes.post(PREFIX + "/projects/{project}/rename")
    async def _rename(request):
        body = await json_body(request)
        if body is _BAD_JSON:
            return answer(400, {"error": "body: not valid JSON, allowed: {\"to\": new name}"})
        return answer(*await call(rename_project, True, request.match_info["project"], body))

    @routes.get(PREFIX + "/projects/{project}/batches")
    async def _batches(request):
        return answer(*await call(list_project_batches, False, request.match_info["project"]))

    @routes.get(PREFIX + "/batches/{project}/{batch_id}/manifest")
    async def _manifest(request):
        m = request.match_info
        return answer(*await call(get_manifest, True, m["project"], m["batch_id"]))

    @routes.get(PREFIX + "/batches/{project}/{batch_id}/thumbnail")
    async def _thumbnail(request):
        m = request.match_info
        status, payload = await call(get_thumbnail, True, m["project"], m["batch_id"],
                                     request.query.get("pass"))
        if status != 200:
            return answer(status, payload)
        return web.Response(body=payload, content_type="image/jpeg",
                            headers={"Cache-Control": "no-cache"})

    @routes.get(PREFIX + "/loader_batches")
    async def _loader_batches(request):
        return answer(*await call(loader_batches, False))

    @routes.get(PREFIX + "/jobs")
    async def _jobs(request):
        return answer(200, list_jobs())

    @routes.post(PREFIX + "/refresh")
    async def _refresh(request):
        body = await json_body(request)
        if body is _BAD_JSON:
            return answer(400, {"error": "body: not valid JSON, allowed: {\"project\": name} or nothing"})
        return answer(*await call(refresh, True, body))

    from . import mesh_routes  # the founding 3D API: /pose_factory/3d/…

    mesh_routes.register(routes, call, answer, json_body, _BAD_JSON, RouteError)


    @routes.get(PREFIX + "/viewer/mesh")
    async def _viewer_mesh(request):
        q = request.query
        return answer(*await call(viewer_mesh, False, q.get("height"), q.get("build"), q.get("shape")))

    @routes.get(PREFIX + "/viewer/rigmesh")
    async def _viewer_rig_mesh(request):
        return answer(*await call(viewer_rig_mesh, False, request.rel_url.query.get("key")))

    @routes.get(PREFIX + "/viewer/limits")
    async def _viewer_limits(request):
        return answer(*await call(viewer_limits, False))

    @routes.post(PREFIX + "/viewer/scene")
    async def _viewer_scene(request):
        if (request.content_length or 0) > VIEWER_MAX_BODY:
            return answer(413, {"error": f"body: {request.content_length} bytes, allowed: at most {VIEWER_MAX_BODY}"})
        body = await json_body(request)
        if body is _BAD_JSON:
            return answer(400, {"error": "body: not valid JSON, allowed: {\"subject\", \"poses\", \"frame\", "
                                         "\"cameras\", \"render\"}"})
        return answer(*await call(viewer_scene, False, {} if body is None else body))


_BAD_JSON = object()
_TOO_DEEP = object()


def _register_with_comfyui() -> bool:
    try:
        import server  # ComfyUI's server module; absent outside ComfyUI
    except Exception:
        return False
    prompt_server = getattr(getattr(server, "PromptServer", None), "instance", None)
    if prompt_server is None or not hasattr(prompt_server, "routes"):
        return False
    register(prompt_server.routes)
    return True


REGISTERED = _register_with_comfyui()
