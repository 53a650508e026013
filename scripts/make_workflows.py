#!/usr/bin/env python3
"""Writes the example workflows (DESIGN.md §2, §5): each one is described once below, in Python,
and written twice — the UI format ComfyUI lists as a template (``example_workflows/<name>.json``)
and the API format ``POST /prompt`` takes (``example_workflows/api/<name>.json``).

    python scripts/make_workflows.py [--out DIR] [--thumbnails]

Input order, widget/socket split and output names come from ``tests/fixtures/object_info.json``
(captured from a real ComfyUI by scripts/capture_object_info.py), so ``widgets_values`` follow
the order the UI expects (a seed INT with ``control_after_generate`` is followed by its control
value). ``--thumbnails`` also renders each workflow's pose batch with the pack (Blender, in a
temporary local storage, at most 512 px) and writes ``<name>.jpg`` beside the template.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OBJECT_INFO = ROOT / "tests" / "fixtures" / "object_info.json"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

# Model files the SDXL workflows name (download pages in the README).
SDXL_CKPT = "sd_xl_base_1.0.safetensors"
OPENPOSE_CN = "OpenPoseXL2.safetensors"
UNION_CN = "controlnet-union-sdxl-1.0-promax.safetensors"

POSITIVE = ("full body photo of a young woman in a red bomber jacket, white t-shirt and blue jeans, "
            "sneakers, plain light grey studio background, soft studio light, sharp focus, high detail")
NEGATIVE = "blurry, lowres, deformed hands, extra limbs, extra fingers, cropped, watermark, text"
SHEET_POSITIVE = ("character turnaround sheet, the same knight in polished silver armour with a blue cape, "
                  "full body, plain grey background, even studio light, concept art, high detail")


def load_object_info(path=OBJECT_INFO) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def is_widget(spec) -> bool:
    """An /object_info input spec ([type, opts]) is a widget (INT, FLOAT, STRING, BOOLEAN, COMBO
    written as "COMBO" or as a list of options); anything else is a socket."""
    t = spec[0]
    return isinstance(t, list) or t in WIDGET_TYPES


def input_specs(info: dict, class_type: str) -> list:
    """[(name, spec, required)] in the order the UI lays them out (input_order), hidden left out."""
    d = info[class_type]
    order = d.get("input_order") or {k: list(v) for k, v in d["input"].items()}
    out = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            out.append((name, d["input"][section][name], section == "required"))
    return out


# Nodes whose optional sockets the front end shows only up to one past the last linked one
# (web/js/pose_list.js): a saved workflow lists just those.
GROWING = {"PoseFactoryPoseList"}


def shown_inputs(info: dict, class_type: str, values: dict) -> list:
    """input_specs as the UI shows the node: a growing node's unlinked optional sockets after the
    first one past the last linked socket left out."""
    specs = input_specs(info, class_type)
    if class_type not in GROWING:
        return specs
    linked = [i for i, (name, _, _) in enumerate(specs) if name in values]
    return specs[:max(linked, default=-1) + 2]


def has_control_after_generate(name: str, spec) -> bool:
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0] == "INT" and (bool(opts.get("control_after_generate")) or name in ("seed", "noise_seed"))


class Node:
    def __init__(self, wf, nid, class_type, values, pos, size, title):
        self.wf, self.id, self.class_type, self.values = wf, nid, class_type, values
        self.pos, self.size, self.title = pos, size, title

    def __getitem__(self, index):  # node[i] = a link from output i
        return (self, index)


class Workflow:
    """A graph described once. ``add(type, pos, **inputs)``: an input is a literal (a widget value)
    or ``other_node[output_index]`` (a link). Widgets left out take their default."""

    def __init__(self, name: str, info: dict):
        self.name, self.info, self.nodes, self.groups = name, info, [], []
        self.column_y = {}  # x -> the first free y in that column

    def add(self, class_type, pos, size=None, title=None, **inputs):
        """pos: (x, y), or x alone to stack the node below the last one in that column."""
        if class_type not in self.info:
            raise KeyError(f"{self.name}: {class_type} is not in {OBJECT_INFO.name}")
        known = {n for n, _, _ in input_specs(self.info, class_type)}
        unknown = set(inputs) - known - {"control_after_generate"}
        if unknown:
            raise KeyError(f"{self.name}: {class_type} has no input {sorted(unknown)}")
        if size is None:
            size = self._auto_size(class_type, inputs)
        if isinstance(pos, (int, float)):
            pos = (pos, self.column_y.get(pos, 0))
        self.column_y[pos[0]] = max(self.column_y.get(pos[0], 0), pos[1] + size[1] + 70)
        node = Node(self, len(self.nodes) + 1, class_type, inputs, list(pos), list(size), title)
        self.nodes.append(node)
        return node

    def _auto_size(self, class_type, inputs):
        specs = shown_inputs(self.info, class_type, inputs)
        sockets = sum(1 for _, spec, _ in specs if not is_widget(spec))
        widgets = sum(1 + has_control_after_generate(n, spec) for n, spec, _ in specs if is_widget(spec))
        outputs = len(self.info[class_type]["output"])
        return [320, 16 + 24 * max(sockets, outputs) + 28 * widgets]

    # -- values ------------------------------------------------------------------------------
    def _widget_value(self, node, name, spec):
        if name in node.values:
            v = node.values[name]
            if isinstance(v, tuple):
                raise ValueError(f"{self.name}: {node.class_type}.{name} is a widget; it cannot be linked here")
            return v
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if "default" in opts:
            return opts["default"]
        if isinstance(spec[0], list) and spec[0]:
            return spec[0][0]
        if spec[0] == "COMBO" and opts.get("options"):
            return opts["options"][0]
        raise ValueError(f"{self.name}: {node.class_type}.{name} needs a value")

    # -- API format ----------------------------------------------------------------------------
    def api(self) -> dict:
        out = {}
        for node in self.nodes:
            inputs = {}
            for name, spec, required in input_specs(self.info, node.class_type):
                if is_widget(spec):
                    inputs[name] = self._widget_value(node, name, spec)
                elif name in node.values:
                    src, idx = node.values[name]
                    inputs[name] = [str(src.id), idx]
                elif required:
                    raise ValueError(f"{self.name}: {node.class_type}.{name} (required) is not linked")
            out[str(node.id)] = {"class_type": node.class_type, "inputs": inputs,
                                 "_meta": {"title": node.title or self.info[node.class_type].get(
                                     "display_name", node.class_type)}}
        return out

    # -- UI format -----------------------------------------------------------------------------
    def _order(self) -> dict:
        """Execution order (a topological order, ties by id) as the UI saves it in "order"."""
        deps = {n.id: {v[0].id for v in n.values.values() if isinstance(v, tuple)} for n in self.nodes}
        done, order = set(), {}
        while len(done) < len(self.nodes):
            ready = sorted(i for i in deps if i not in done and deps[i] <= done)
            if not ready:
                raise ValueError(f"{self.name}: the graph has a cycle")
            for i in ready:
                order[i] = len(order)
                done.add(i)
        return order

    def ui(self) -> dict:
        links, node_inputs, out_links = [], {}, {}
        for node in self.nodes:
            ins = []
            for name, spec, required in shown_inputs(self.info, node.class_type, node.values):
                if is_widget(spec):
                    continue
                entry = {"name": name, "type": spec[0], "link": None}
                if not required:
                    entry["shape"] = 7  # how the UI draws (and saves) an optional socket
                if name in node.values:
                    src, idx = node.values[name]
                    out_type = self.info[src.class_type]["output"][idx]
                    link_id = len(links) + 1
                    links.append([link_id, src.id, idx, node.id, len(ins), out_type])
                    entry["link"] = link_id
                    out_links.setdefault((src.id, idx), []).append(link_id)
                ins.append(entry)
            node_inputs[node.id] = ins
        order = self._order()
        nodes = []
        for node in self.nodes:
            d = self.info[node.class_type]
            outputs = []
            for i, (otype, oname) in enumerate(zip(d["output"], d.get("output_name") or d["output"])):
                outputs.append({"name": oname, "type": otype, "links": out_links.get((node.id, i), []),
                                "slot_index": i})
            widgets = []
            for name, spec, _ in input_specs(self.info, node.class_type):
                if is_widget(spec):
                    widgets.append(self._widget_value(node, name, spec))
                    if has_control_after_generate(name, spec):
                        widgets.append(node.values.get("control_after_generate", "fixed"))
            entry = {"id": node.id, "type": node.class_type, "pos": node.pos,
                     "size": node.size,
                     "flags": {}, "order": order[node.id], "mode": 0,
                     "inputs": node_inputs[node.id], "outputs": outputs,
                     "properties": {"Node name for S&R": node.class_type}, "widgets_values": widgets}
            if node.title:
                entry["title"] = node.title
            nodes.append(entry)
        return {"last_node_id": len(self.nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
                "groups": self.groups, "config": {},
                "extra": {"ds": getattr(self, "extra_ds", None) or {"scale": 0.75, "offset": [0, 0]}},
                "version": 0.4}


# ------------------------------------------------------------------------------------------------
# The four workflows. x columns: spec nodes 0, batch 400, loaders and prompts 800, ControlNets 1200,
# sampling 1600, output 2000+; a node given only its x stacks below the last one in that column.

def pose_spec(wf, presets, views, start_azimuth, elevation, width, height, sdxl_sticks=False):
    """Mannequin + presets (+ PoseList) + CameraOrbit -> RequestPoseBatch (backend local)."""
    subject = wf.add("PoseFactoryMannequin", 0, height=1.75, build="average")
    poses = [wf.add("PoseFactoryPosePreset", 0, preset=preset, mirror=False, hands=hands)
             for preset, hands in presets]
    if len(poses) > 1:
        pose_out = wf.add("PoseFactoryPoseList", 0, **{f"poses_{i + 1}": p[0] for i, p in enumerate(poses)})[0]
    else:
        pose_out = poses[0][0]
    cams = wf.add("PoseFactoryCameraOrbit", 0, views=views, elevation=elevation, distance=0.0,
                  focal_length=50.0, orthographic=False, roll=0.0, start_azimuth=start_azimuth)
    return wf.add("PoseFactoryRequestPoseBatch", 400, subject=subject[0], poses=pose_out, cameras=cams[0],
                  width=width, height=height, depth=True, normal=True, seg=True, shaded=True,
                  depth_range="batch", hands=True, face=True, sdxl_sticks=sdxl_sticks, backend="local",
                  project="examples", force=False)


def load_pose(wf, batch, pos):
    return wf.add("PoseFactoryLoadPoseFromR2", pos, batch=batch[0], project="examples", batch_id="", views="all",
                  frames="all", order="view_major", hands=True, face=True)


def sdxl_base(wf, x, positive, width, height, batch_size):
    ckpt = wf.add("CheckpointLoaderSimple", x, size=[320, 98], ckpt_name=SDXL_CKPT)
    pos = wf.add("CLIPTextEncode", x, size=[320, 160], title="Positive prompt", clip=ckpt[1], text=positive)
    neg = wf.add("CLIPTextEncode", x, size=[320, 120], title="Negative prompt", clip=ckpt[1], text=NEGATIVE)
    latent = wf.add("EmptyLatentImage", x, width=width, height=height, batch_size=batch_size)
    return ckpt, pos, neg, latent


def sample(wf, x, ckpt, positive, negative, latent):
    ks = wf.add("KSampler", x, size=[320, 262], model=ckpt[0], seed=42, control_after_generate="fixed",
                steps=30, cfg=6.0, sampler_name="dpmpp_2m", scheduler="karras", positive=positive,
                negative=negative, latent_image=latent[0], denoise=1.0)
    dec = wf.add("VAEDecode", x, samples=ks[0], vae=ckpt[2])
    return dec


def openpose_sdxl(info):
    wf = Workflow("pose_batch_openpose_sdxl", info)
    presets = [("waving", "open"), ("fighting_stance", "fist"), ("running", "preset default"),
               ("hands_on_hips", "preset default")]
    batch = pose_spec(wf, presets, views=1, start_azimuth=20.0, elevation=5.0, width=832, height=1216)
    pose = load_pose(wf, batch, 800)
    ckpt, pos, neg, latent = sdxl_base(wf, 800, POSITIVE, 832, 1216, len(presets))
    cn = wf.add("ControlNetLoader", 1200, size=[340, 60], control_net_name=OPENPOSE_CN)
    apply = wf.add("ControlNetApplyAdvanced", 1200, positive=pos[0], negative=neg[0], control_net=cn[0],
                   image=pose[0], strength=0.9, start_percent=0.0, end_percent=1.0)
    dec = sample(wf, 1600, ckpt, apply[0], apply[1], latent)
    wf.add("PreviewImage", 1200, size=[340, 420], title="OpenPose conditioning", images=pose[0])
    wf.add("SaveImage", 2000, size=[460, 620], images=dec[0], filename_prefix="pose_factory/openpose_sdxl")
    return wf


def multi_controlnet_sdxl(info):
    wf = Workflow("pose_batch_multi_controlnet_sdxl", info)
    presets = [("sitting", "relaxed"), ("kneeling_one_knee", "preset default"), ("reaching_up", "open"),
               ("dance_disco", "preset default")]
    batch = pose_spec(wf, presets, views=1, start_azimuth=30.0, elevation=8.0, width=832, height=1216)
    pose = load_pose(wf, batch, 800)
    dn = wf.add("PoseFactoryDepthNormalLoader", 800, batch=batch[0], project="examples", batch_id="",
                views="all", frames="all", order="view_major", depth_range="batch",
                normal_convention="controlnet", parts="hands")
    ckpt, pos, neg, latent = sdxl_base(wf, 800, POSITIVE, 832, 1216, len(presets))
    union = wf.add("ControlNetLoader", 1200, size=[340, 60], title="ControlNet union (depth, normal)",
                   control_net_name=UNION_CN)
    as_depth = wf.add("SetUnionControlNetType", 1200, control_net=union[0], type="depth")
    as_normal = wf.add("SetUnionControlNetType", 1200, control_net=union[0], type="normal")
    op = wf.add("ControlNetLoader", 1200, size=[340, 60], title="ControlNet OpenPose",
                control_net_name=OPENPOSE_CN)
    a1 = wf.add("ControlNetApplyAdvanced", 1200, title="Apply depth", positive=pos[0], negative=neg[0],
                control_net=as_depth[0], image=dn[0], strength=0.5, start_percent=0.0, end_percent=0.6)
    a2 = wf.add("ControlNetApplyAdvanced", 1200, title="Apply normal", positive=a1[0], negative=a1[1],
                control_net=as_normal[0], image=dn[1], strength=0.4, start_percent=0.0, end_percent=0.6)
    a3 = wf.add("ControlNetApplyAdvanced", 1200, title="Apply OpenPose", positive=a2[0], negative=a2[1],
                control_net=op[0], image=pose[0], strength=0.8, start_percent=0.0, end_percent=1.0)
    dec = sample(wf, 1600, ckpt, a3[0], a3[1], latent)
    wf.add("SaveImage", 2000, size=[460, 620], images=dec[0],
           filename_prefix="pose_factory/multi_controlnet_sdxl")
    return wf


def character_sheet(info):
    wf = Workflow("character_sheet_4_views", info)
    batch = pose_spec(wf, [("hands_on_hips", "preset default")], views=4, start_azimuth=0.0, elevation=5.0,
                      width=832, height=1216)
    pose = load_pose(wf, batch, 800)
    ckpt, pos, neg, latent = sdxl_base(wf, 800, SHEET_POSITIVE, 832, 1216, 4)
    cn = wf.add("ControlNetLoader", 1200, size=[340, 60], control_net_name=OPENPOSE_CN)
    apply = wf.add("ControlNetApplyAdvanced", 1200, positive=pos[0], negative=neg[0], control_net=cn[0],
                   image=pose[0], strength=0.9, start_percent=0.0, end_percent=1.0)
    dec = sample(wf, 1600, ckpt, apply[0], apply[1], latent)
    grid = wf.add("ImageGrid", 2000, title="Tile the 4 views", images=dec[0], columns=4, cell_width=832,
                  cell_height=1216, padding=16)
    wf.add("SaveImage", 2400, size=[700, 360], images=grid[0], filename_prefix="pose_factory/character_sheet")
    pose_grid = wf.add("ImageGrid", 2000, title="Tile the 4 skeletons", images=pose[0], columns=4,
                       cell_width=416, cell_height=608, padding=8)
    wf.add("PreviewImage", 2400, size=[700, 300], title="OpenPose sheet", images=pose_grid[0])
    return wf


def no_model_preview(info):
    wf = Workflow("no_model_preview", info)
    presets = [("a_pose", "preset default"), ("waving", "open"), ("fighting_stance", "fist")]
    batch = pose_spec(wf, presets, views=4, start_azimuth=0.0, elevation=10.0, width=512, height=512)
    pose = load_pose(wf, batch, 800)
    dn = wf.add("PoseFactoryDepthNormalLoader", 800, batch=batch[0], project="examples", batch_id="",
                views="all", frames="all", order="view_major", depth_range="batch",
                normal_convention="controlnet", parts="hands")
    redraw = wf.add("PoseFactoryPoseKeypointsToImage", 800, title="Redraw from keypoints (SDXL sticks)",
                    pose_keypoint=pose[1], hands=True, face=False, sdxl_sticks=True)
    mask = wf.add("MaskToImage", 800, mask=dn[4])
    previews = [("OpenPose", pose[0]), ("Shaded", pose[2]), ("Depth", dn[0]), ("Normal", dn[1]),
                ("Segmentation", dn[2]), ("Keypoints redrawn", redraw[0]), ("Hands mask", mask[0])]
    for i, (title, src) in enumerate(previews):
        wf.add("PreviewImage", 1200 + 400 * (i % 4), size=[360, 380], title=title, images=src)
    return wf


# Three saved views: front, three-quarter from the subject's left, and its right side (metres, Z up,
# the subject facing -Y), as the 3D viewer's "add this view" writes them.
SAVED_VIEWS = [
    {"location": [0.0, -4.2, 1.1], "look_at": [0.0, 0.0, 0.95], "focal_length": 50.0},
    {"location": [2.9, -2.9, 1.6], "look_at": [0.0, 0.0, 0.9], "focal_length": 50.0},
    {"location": [-4.2, 0.0, 1.0], "look_at": [0.0, 0.0, 0.95], "focal_length": 50.0},
]


def posing_in_3d(info):
    """The 3D viewer (web/js/viewer.js) on the spec nodes: a posed figure on Pose from JSON and three
    saved views on Camera List, rendered by Request Pose Batch and previewed."""
    wf = Workflow("posing_in_3d", info)
    subject = wf.add("PoseFactoryMannequin", (0, 0), height=1.75, build="average")
    pose = wf.add("PoseFactoryPoseFromJSON", (0, 160), size=[440, 640], preset="waving",
                  joints=json.dumps({"l_elbow": {"flex": 70}, "neck": {"twist": 20}}))
    cams = wf.add("PoseFactoryCameraList", (480, 0), size=[440, 560],
                  cameras=json.dumps(SAVED_VIEWS, separators=(", ", ": ")))
    batch = wf.add("PoseFactoryRequestPoseBatch", (480, 620), size=[440, 820], subject=subject[0], poses=pose[0],
                   cameras=cams[0], width=384, height=512, depth=False, normal=False, seg=False, shaded=True,
                   depth_range="batch", hands=True, face=True, sdxl_sticks=False, backend="local",
                   project="examples", force=False)
    loaded = load_pose(wf, batch, (960, 0))
    wf.add("PreviewImage", (960, 420), size=[420, 380], title="OpenPose (rendered)", images=loaded[0])
    wf.add("PreviewImage", (960, 840), size=[420, 380], title="Shaded (rendered)", images=loaded[2])
    wf.extra_ds = {"scale": 0.62, "offset": [20, 20]}
    return wf


WORKFLOWS = (openpose_sdxl, multi_controlnet_sdxl, character_sheet, no_model_preview, posing_in_3d)


def build_all(info=None) -> list:
    info = info or load_object_info()
    return [make(info) for make in WORKFLOWS]


def dump(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_all(out: Path, info=None) -> list:
    out = Path(out)
    (out / "api").mkdir(parents=True, exist_ok=True)
    written = []
    for wf in build_all(info):
        for path, data in ((out / f"{wf.name}.json", wf.ui()), (out / "api" / f"{wf.name}.json", wf.api())):
            path.write_text(dump(data), encoding="utf-8")
            written.append(path)
    return written


# ------------------------------------------------------------------------------------------------
# Thumbnails: the workflow's own pose batch, rendered by the pack.

def thumbnail_spec(wf: Workflow, longest: int = 512) -> dict:
    """The JobSpec the workflow's RequestPoseBatch builds (through our nodes' own code), at most
    `longest` px on its longest side (multiples of 8)."""
    sys.path.insert(0, str(ROOT))
    import nodes as pack_nodes  # the pack's nodes package
    from nodes.batch_nodes import build_spec

    results = {}

    def value(v):
        return results[v[0].id][v[1]] if isinstance(v, tuple) else v

    req = None
    for node in wf.nodes:
        if node.class_type == "PoseFactoryRequestPoseBatch":
            req = node
            break
        if not node.class_type.startswith("PoseFactory"):
            continue
        cls = pack_nodes.NODE_CLASS_MAPPINGS[node.class_type]
        kwargs = {k: value(v) for k, v in node.values.items()}
        results[node.id] = getattr(cls(), cls.FUNCTION)(**kwargs)
    args = {k: value(v) for k, v in req.values.items() if k not in ("backend", "force")}
    w, h = args["width"], args["height"]
    scale = min(1.0, longest / max(w, h))
    args["width"], args["height"] = int(w * scale) // 8 * 8, int(h * scale) // 8 * 8
    return build_spec(**args)


def _fit(img, size, bg=(0, 0, 0)):
    from PIL import Image
    im = img.copy()
    im.thumbnail(size, Image.LANCZOS)
    cell = Image.new("RGB", size, bg)
    cell.paste(im, ((size[0] - im.width) // 2, (size[1] - im.height) // 2))
    return cell


THUMB_LAYOUT = {  # rows/columns (pass names), which (view, frame) entries, cell size
    "pose_batch_openpose_sdxl": (["overlay", "openpose"], "transpose", (128, 192)),
    "pose_batch_multi_controlnet_sdxl": (["depth", "normal", "openpose", "shaded"], [(0, 0), (0, 2)], (128, 192)),
    "character_sheet_4_views": (["shaded", "openpose"], "transpose", (128, 192)),
    "no_model_preview": (["shaded", "openpose", "depth", "normal"], [(0, 0), (1, 1), (3, 2)], (128, 128)),
    "posing_in_3d": (["shaded", "openpose"], "transpose", (128, 170)),
}


def make_thumbnail(wf: Workflow, out_path: Path, workdir: Path) -> Path:
    import numpy as np
    from PIL import Image, ImageDraw

    from pose_factory import imageio
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage, batch_prefix

    spec = thumbnail_spec(wf)
    storage = LocalStorage(workdir)
    manifest, _ = render_batch(spec, storage, project="thumbs")
    bdir = storage.local_path(batch_prefix("thumbs", manifest["batch_id"]))

    def img(entry, name):
        if name == "overlay":
            pose, shaded = img(entry, "openpose"), img(entry, "shaded")
            a, b = np.asarray(pose), np.asarray(shaded)
            return Image.fromarray(np.where(a.max(axis=2, keepdims=True) > 0, a, (b * 0.6).astype(np.uint8)))
        arr = imageio.read_png(str(bdir / entry["files"][name]["key"]))
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        return Image.fromarray(arr[:, :, :3].astype(np.uint8))

    cols, which, cell = THUMB_LAYOUT[wf.name]
    entries = manifest["entries"]
    if which == "transpose":  # one row per pass, one column per image (views or frames)
        grid = [[img(e, name) for e in entries[:4]] for name in cols]
    else:
        by_vf = {(e["view"], e["frame"]): e for e in entries}
        grid = [[img(by_vf[vf], name) for name in cols] for vf in which]
    rows, ncols = len(grid), len(grid[0])
    sheet = Image.new("RGB", (ncols * cell[0], rows * cell[1]), (0, 0, 0))
    for r, row in enumerate(grid):
        for c, im in enumerate(row):
            sheet.paste(_fit(im, cell), (c * cell[0], r * cell[1]))
    label_h = 18  # the tiles fit above a caption strip: 512 x 384 in all
    thumb = Image.new("RGB", (512, 384), (24, 24, 24))
    thumb.paste(_fit(sheet, (512, 384 - label_h), (24, 24, 24)), (0, 0))
    sheet = thumb
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 384 - label_h + 3), f"{wf.name}   ({', '.join(cols)})", fill=(235, 235, 235))
    sheet.save(out_path, "JPEG", quality=88, optimize=True)
    return out_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "example_workflows"))
    ap.add_argument("--object-info", default=str(OBJECT_INFO))
    ap.add_argument("--thumbnails", action="store_true", help="render each pose batch (Blender) into <name>.jpg")
    ap.add_argument("--only", action="append", help="with --thumbnails: render only this workflow's (repeatable)")
    args = ap.parse_args(argv)
    info = load_object_info(args.object_info)
    for p in write_all(Path(args.out), info):
        print(f"wrote {p}")
    if args.thumbnails:
        sys.path.insert(0, str(ROOT))
        with tempfile.TemporaryDirectory(prefix="pose_factory_thumbs_") as tmp:
            for wf in build_all(info):
                if args.only and wf.name not in args.only:
                    continue
                print(f"wrote {make_thumbnail(wf, Path(args.out) / f'{wf.name}.jpg', Path(tmp))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
