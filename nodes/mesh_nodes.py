"""Mesh nodes (DESIGN.md §7 asset pipeline): Multi-View Prompts, Request Mesh From Images (a
reconstruct job: progress, cancel and cost like Request Pose Batch), Render Mesh Passes (any mesh:
ours, a file, or ComfyUI core's MESH) and Pose Prop (any of them placed in a pose batch's scene).
The mesh file goes to ComfyUI's output folder, where core's Preview 3D / Load 3D open it."""
from __future__ import annotations

import os
import re
import shutil

import numpy as np

from ._common import (CATEGORY, check_project_widget, get_settings, interrupt_check, log, node_project, progress_bar,
                      project_input, send_final_on_error, send_message)
from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError
from pose_factory.mesh import backends, postprocess, reconstruct
from pose_factory.mesh import views as mv

CAT = f"{CATEGORY}/mesh"
OUTPUT_SUBFOLDER = "pose_factory"


def output_directory() -> str:
    """ComfyUI's output folder (folder_paths), or the data root's output/ outside ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return os.path.join(get_settings()["data_root"], "output")
    return folder_paths.get_output_directory()


def _progress(unique_id, label):
    """on_progress for a job: ComfyUI's bar and the node's progress message."""
    state = {"bar": None, "total": None}

    def on_progress(event):
        total, done = int(event.get("total") or 0), int(event.get("done") or 0)
        if total and state["total"] != total:
            state["bar"], state["total"] = progress_bar(total), total
        if state["bar"] is not None and total:
            state["bar"].update_absolute(min(done, total), total)
        send_message("pose_factory.progress", {"node": unique_id, "state": event.get("state"), "done": done,
                                               "total": total, **label})

    return on_progress


class PoseFactoryMultiViewPrompts:
    DESCRIPTION = ("One subject prompt → the canonical 4 or 8 view prompts (front, left side, back, …, on a "
                   "neutral background), as a list your own SDXL/FLUX graph generates one image from each "
                   "(join them with Rebatch Images), and the camera rig of exactly those views, for Request "
                   "Mesh From Images or Request Pose Batch.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("STRING", "POSE_FACTORY_CAMERAS", "STRING")
    RETURN_NAMES = ("prompts", "cameras", "view_names")
    OUTPUT_IS_LIST = (True, False, False)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "subject": ("STRING", {"multiline": True, "default": "a wooden treasure chest with iron bands"}),
            "views": (["4", "8"], {"default": "8"}),
        }}

    def make(self, subject, views):
        n = int(views)
        return (mv.prompts(subject, n), mv.rig(n), ", ".join(mv.VIEW_NAMES[n]))


def _cameras(images_n: int, cameras, batch, settings):
    """The job's cameras: a batch's (its manifest's views), the canonical rig, or canonical by default."""
    if batch is not None:
        from pose_factory.loading import fetch_batch

        manifest, _ = fetch_batch(settings, batch["project"], batch["batch_id"], names=())
        return manifest["views"]
    if cameras is not None and cameras != mv.rig(images_n):
        raise SpecError("cameras", "a camera rig other than the canonical one",
                        "the rig of Multi-View Prompts for these views, or a batch whose cameras shot them")
    return "canonical"


class PoseFactoryRequestMeshFromImages:
    DESCRIPTION = ("Images → 3D mesh in a worker job (local or RunPod): the canonical 4 or 8 views (or the "
                   "views of a batch, with its cameras), masks given or made from the neutral background, a "
                   "reconstruction backend (visual_hull needs no model), then smoothing, decimation, UVs and "
                   "GLB/OBJ/FBX. The mesh file is copied to ComfyUI's output folder (pose_factory/…): feed "
                   "model_file to Preview 3D. Same views and settings: the stored mesh, no new job.")
    CATEGORY = CAT
    FUNCTION = "request"
    RETURN_TYPES = ("POSE_FACTORY_MESH", "STRING", "STRING")
    RETURN_NAMES = ("mesh", "model_file", "batch_id")
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "reconstruction": (backends.installed() or ["visual_hull"], {"default": "visual_hull"}),
                "quality_tier": (list(reconstruct.TIERS), {"default": "standard",
                                                           "tooltip": "Voxels along the longest side: draft 96, "
                                                                      "standard 128, high 256."}),
                "format": (list(postprocess.FORMATS), {"default": "glb", "tooltip": "The file model_file names."}),
                "smooth": ("INT", {"default": 10, "min": 0, "max": postprocess.MAX_SMOOTH}),
                "target_faces": ("INT", {"default": 20000, "min": 0, "max": 2_000_000, "step": 1000,
                                         "tooltip": "Quadric decimation to about this many faces; 0 = keep all."}),
                "uvs": ("BOOLEAN", {"default": True}),
                "backend": (["local", "runpod"], {"default": "local"}),
                "project": project_input("The project the mesh is stored in: a known project, new… or rename…"),
                "force": ("BOOLEAN", {"default": False}),
            },
            "optional": {"masks": ("MASK",), "cameras": ("POSE_FACTORY_CAMERAS",), "batch": ("POSE_FACTORY_BATCH",)},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, reconstruction=None, project=None):
        # a learned backend may be installed in the worker only: the worker names the installed ones
        if reconstruction is not None and not isinstance(reconstruction, str):
            return "reconstruction: a name"
        return check_project_widget(project)  # any project name (a COMBO of the known ones)

    def request(self, images, reconstruction, quality_tier, format, smooth, target_faces, uvs, backend, project,
                force, masks=None, cameras=None, batch=None, unique_id=None):
        from pose_factory.loading import fetch_batch
        from pose_factory.mesh.client import request_mesh

        settings = get_settings()
        project = node_project(project, settings)
        arrays = [np.clip(np.rint(i.cpu().numpy() * 255), 0, 255).astype(np.uint8) for i in images]
        mask_arrays = None if masks is None else [m.cpu().numpy() > 0.5 for m in masks]
        raw = {"backend": reconstruction, "quality_tier": quality_tier, "formats": sorted({"glb", format}),
               "post": {"smooth": int(smooth), "target_faces": int(target_faces), "uvs": bool(uvs)},
               "cameras": _cameras(len(arrays), cameras, batch, settings)}
        from pose_factory.mesh.client import estimate_usd

        usd = estimate_usd(reconstruct.normalize(raw), settings["runpod"]) if backend == "runpod" else 0.0
        estimate = f"{len(arrays)} views, {quality_tier}" + (f", ~${usd:.2f} on RunPod" if backend == "runpod" else "")
        send_message("pose_factory.progress", {"node": unique_id, "state": "queued", "done": 0, "total": 0,
                                               "estimate": estimate})
        with send_final_on_error({"node": unique_id, "kind": "reconstruct", "project": project}):
            result = request_mesh(arrays, mask_arrays, raw, project=project, force=bool(force), backend=backend,
                                  settings=settings, on_progress=_progress(unique_id, {"kind": "reconstruct",
                                                                                       "estimate": estimate}),
                                  check_cancel=interrupt_check())
        manifest, folder = fetch_batch(settings, result.project, result.batch_id,
                                       names=(reconstruct.FORMAT_FOLDERS[format],))
        src = os.path.join(folder, reconstruct.asset_key(manifest, format))
        rel = f"{OUTPUT_SUBFOLDER}/{result.batch_id}.{format}"
        dst = os.path.join(output_directory(), rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        asset = manifest["asset"]
        log.info("3D Pose Factory: mesh %s/%s: %d faces (%s), cost $%.4f", result.project, result.batch_id,
                 asset["faces"], "made" if result.rendered else "already in storage", result.cost_usd)
        send_message("pose_factory.progress", {"node": unique_id, "state": "completed", "done": 1, "total": 1,
                                               "batch_id": result.batch_id, "cost_usd": result.cost_usd})
        ref = {"project": result.project, "batch_id": result.batch_id, "file": dst, "format": format}
        return {"ui": {"text": [f"{asset['faces']} faces, {rel}"]}, "result": (ref, rel, result.batch_id)}


class PoseFactoryRenderMeshPasses:
    DESCRIPTION = ("Exact depth, normal (three conventions), mask, seg and a clay render of any mesh — a "
                   "Request Mesh From Images result, ComfyUI's own MESH (e.g. from Hunyuan3D or TRELLIS), or "
                   "a .glb/.obj/.stl/.ply file under ComfyUI's input or output folder — from any camera rig, "
                   "with the mannequin's renderer. The result is a batch the Depth/Normal loader reads.")
    CATEGORY = CAT
    FUNCTION = "render"
    RETURN_TYPES = ("POSE_FACTORY_BATCH", "STRING")
    RETURN_NAMES = ("batch", "batch_id")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "cameras": ("POSE_FACTORY_CAMERAS",),
                "width": ("INT", {"default": 512, "min": 64, "max": spec_mod.MAX_SIZE, "step": 8}),
                "height": ("INT", {"default": 512, "min": 64, "max": spec_mod.MAX_SIZE, "step": 8}),
                "depth_range": (["batch", "image"], {"default": "batch"}),
                "shading": (["smooth", "flat"], {"default": "smooth"}),
                "project": project_input("The project the passes are stored in: a known project, new… or "
                                         "rename…"),
                "force": ("BOOLEAN", {"default": False}),
            },
            "optional": {"mesh": ("MESH",), "pose_factory_mesh": ("POSE_FACTORY_MESH",),
                         "mesh_file": ("STRING", {"default": "", "tooltip": "A path under ComfyUI's input or output "
                                                                            "folder, e.g. 3d/chest.glb"})},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, project=None):
        return check_project_widget(project)  # any project name (a COMBO of the known ones)

    def render(self, cameras, width, height, depth_range, shading, project, force, mesh=None,
               pose_factory_mesh=None, mesh_file="", unique_id=None):
        from pose_factory.mesh import meshdata
        from pose_factory.mesh.passes import render_mesh_passes
        from pose_factory.settings import make_storage

        settings = get_settings()
        project = node_project(project, settings)
        _exactly_one_mesh(mesh, pose_factory_mesh, mesh_file)
        if mesh is not None:
            source = meshdata.from_comfy_mesh(mesh)
        elif pose_factory_mesh is not None:
            source = pose_factory_mesh["file"]
        else:
            source = _under_comfy_folders(mesh_file.strip())
        spec = {"render": {"width": int(width), "height": int(height), "depth_range": depth_range},
                "cameras": dict(cameras), "mesh": {"shading": shading}}
        manifest, rendered = render_mesh_passes(source, spec, make_storage(settings), project=project,
                                                force=bool(force), on_progress=_progress(unique_id, {"kind": "mesh_passes"}),
                                                python=settings["worker_python"] or None)
        from pose_factory.storage import index

        index.record(settings["storage"]["cache_root"], manifest)
        return ({"project": manifest["project"], "batch_id": manifest["batch_id"]}, manifest["batch_id"])


def _exactly_one_mesh(mesh, pose_factory_mesh, mesh_file) -> None:
    given = [x for x in (mesh, pose_factory_mesh, (mesh_file or "").strip() or None) if x is not None]
    if len(given) != 1:
        raise SpecError("mesh", f"got {len(given)} meshes", "exactly one of mesh, pose_factory_mesh, mesh_file")


def comfy_folders() -> list[tuple[str, str]]:
    """[("input", its real path), ("output", …)]: ComfyUI's folders a mesh file may come from (the
    input folder only inside ComfyUI), in the order a path is looked up."""
    roots = [("output", os.path.realpath(output_directory()))]
    try:
        import folder_paths

        roots.insert(0, ("input", os.path.realpath(folder_paths.get_input_directory())))
    except ImportError:
        pass
    return roots


def _under_comfy_folders(path: str) -> str:
    """An absolute path to a mesh file under ComfyUI's input or output folder (never outside them)."""
    for _, root in comfy_folders():
        full = os.path.realpath(os.path.join(root, path))
        if os.path.commonpath([root, full]) == root and os.path.isfile(full):
            return full
    raise SpecError("mesh_file", f"{path!r} is no file under ComfyUI's input or output folder",
                    "a path relative to one of them, e.g. 3d/chest.glb")


_AXES = ("x", "y", "z")


def _prop_widgets() -> dict:
    loc = {"default": 0.0, "min": -100.0, "max": 100.0, "step": 0.01, "tooltip": "Metres; Z up, the subject faces -Y."}
    rot = {"default": 0.0, "min": -360.0, "max": 360.0, "step": 1.0, "tooltip": "Degrees, XYZ Euler (Blender's default)."}
    return {**{f"location_{a}": ("FLOAT", dict(loc)) for a in _AXES},
            **{f"rotation_{a}": ("FLOAT", dict(rot)) for a in _AXES},
            "scale": ("FLOAT", {"default": 1.0, "min": 0.001, "max": 100.0, "step": 0.01,
                                "tooltip": "The mesh's units times this (glTF and OBJ are in metres)."}),
            "shading": (["smooth", "flat"], {"default": "smooth"})}


def _placement(kw: dict) -> dict:
    """The prop's placement from the widgets (SpecError naming the widget)."""
    from pose_factory.mesh import props

    raw = {"location": [kw[f"location_{a}"] for a in _AXES], "rotation": [kw[f"rotation_{a}"] for a in _AXES],
           "scale": kw["scale"], "shading": kw["shading"]}
    try:
        return props.normalize_placement(raw)
    except SpecError as e:  # "prop.location[1]" -> the widget "location_y"
        m = re.fullmatch(r"prop\.(location|rotation)\[(\d)\]", e.field)
        raise SpecError(f"{m.group(1)}_{_AXES[int(m.group(2))]}" if m else e.field.split(".")[-1].split("[")[0],
                        e.message, e.allowed) from None


class PoseFactoryPoseProp:
    DESCRIPTION = ("A mesh placed in the pose scene as a prop, for Request Pose Batch's props input: core's MESH (e.g. "
                   "from Hunyuan3D or TRELLIS), a Request Mesh From Images result, or a .glb/.obj/.stl/.ply file "
                   "under ComfyUI's input or output folder; placed by location (m), rotation (degrees) and scale. "
                   "It is rendered in every pass with the mannequin, hides the joints behind it, and has its own "
                   "label in parts/ (32 + its index). Chain several through the props input.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_PROPS",)
    RETURN_NAMES = ("props",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": _prop_widgets(),
                "optional": {"mesh": ("MESH",), "pose_factory_mesh": ("POSE_FACTORY_MESH",),
                             "mesh_file": ("STRING", {"default": "", "tooltip": "A path under ComfyUI's input or "
                                                                                "output folder, e.g. 3d/chair.glb"}),
                             "props": ("POSE_FACTORY_PROPS", {"tooltip": "Props to add this one to."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, mesh_file=None):
        # the numbers: ComfyUI checks their ranges at queue time (an input named here it would not, and it
        # would show this input's error on each of them); a NaN sent through the API is refused when it runs
        from pose_factory.mesh import props

        if isinstance(mesh_file, str) and mesh_file.strip():
            try:
                props.mesh_bytes({"file": _under_comfy_folders(mesh_file.strip())}, "mesh_file")
            except SpecError as e:
                return str(e)
        return True

    def make(self, location_x, location_y, location_z, rotation_x, rotation_y, rotation_z, scale, shading, mesh=None,
             pose_factory_mesh=None, mesh_file="", props=None):
        from pose_factory.mesh import meshdata, props as props_mod

        placement = _placement(dict(location_x=location_x, location_y=location_y, location_z=location_z,
                                    rotation_x=rotation_x, rotation_y=rotation_y, rotation_z=rotation_z, scale=scale,
                                    shading=shading))
        _exactly_one_mesh(mesh, pose_factory_mesh, mesh_file)
        if mesh is not None:
            v, f = meshdata.from_comfy_mesh(mesh)
            props_mod.check_faces(len(f), "mesh")
            ref = {"vertices": v, "faces": f}
        elif pose_factory_mesh is not None:
            ref = {"project": pose_factory_mesh["project"], "batch_id": pose_factory_mesh["batch_id"]}
        else:
            ref = {"file": _under_comfy_folders(mesh_file.strip())}
            props_mod.mesh_bytes(ref, "mesh_file")
        before = list(props or [])
        if len(before) >= props_mod.MAX_PROPS:
            raise SpecError("props", f"got {len(before)} props already", f"at most {props_mod.MAX_PROPS} props")
        return (before + [dict(placement, mesh=ref)],)


NODE_CLASS_MAPPINGS = {
    "PoseFactoryMultiViewPrompts": PoseFactoryMultiViewPrompts,
    "PoseFactoryRequestMeshFromImages": PoseFactoryRequestMeshFromImages,
    "PoseFactoryRenderMeshPasses": PoseFactoryRenderMeshPasses,
    "PoseFactoryPoseProp": PoseFactoryPoseProp,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PoseFactoryMultiViewPrompts": "Multi-View Prompts",
    "PoseFactoryRequestMeshFromImages": "Request Mesh From Images",
    "PoseFactoryRenderMeshPasses": "Render Mesh Passes",
    "PoseFactoryPoseProp": "Pose Prop",
}
