#!/usr/bin/env python3
"""Writes the example workflows (DESIGN.md §2, §5): each one is described once below, in Python,
and written twice — the UI format ComfyUI lists as a template (``example_workflows/<title>.json``)
and the API format ``POST /prompt`` takes (``example_workflows/api/<name>.json``).

ComfyUI's front end (1.49) shows a custom node pack's template by its file name, as its title and
(with "-" and "_" read as spaces) its description, so a UI template's file name is its title for
people. Each UI template also carries a Note saying what it makes and what it needs, and every
model file it names with a download URL and target folder: ``properties.models`` on the loader node
and the workflow's ``models`` list, which the "Missing Models" dialog turns into downloads.

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

# Model files the SDXL workflows name, where to get them, and the ComfyUI/models/ folder they go
# in: the front end offers a download for a URL on huggingface.co (or civitai) naming a
# .safetensors file, saved under the name the host gives it, so each name is the host's file name.
SDXL_CKPT = "sd_xl_base_1.0.safetensors"
OPENPOSE_CN = "OpenPoseXL2.safetensors"
UNION_CN = "diffusion_pytorch_model_promax.safetensors"
HUNYUAN3D_CKPT = "hunyuan3d-dit-v2.safetensors"  # core's image-to-3D (Hunyuan3D 2.0, single view)
# The motion example's Wan 2.1 VACE video model (Comfy-Org/Wan_2.1_ComfyUI_repackaged).
WAN_VACE = "wan2.1_vace_1.3B_fp16.safetensors"
WAN_TEXT = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
WAN_VAE = "wan_2.1_vae.safetensors"
_WAN = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
MODELS = {
    SDXL_CKPT: ("checkpoints", "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
                               "sd_xl_base_1.0.safetensors"),
    OPENPOSE_CN: ("controlnet", "https://huggingface.co/thibaud/controlnet-openpose-sdxl-1.0/resolve/main/"
                                "OpenPoseXL2.safetensors"),
    UNION_CN: ("controlnet", "https://huggingface.co/xinsir/controlnet-union-sdxl-1.0/resolve/main/"
                             "diffusion_pytorch_model_promax.safetensors"),
    # served as model.fp16.safetensors: a download by hand, renamed (RENAME_AFTER_DOWNLOAD). The URL,
    # folder and name are those of ComfyUI's own tutorial, docs.comfy.org/tutorials/3d/hunyuan3D-2
    HUNYUAN3D_CKPT: ("checkpoints", "https://huggingface.co/tencent/Hunyuan3D-2/resolve/main/hunyuan3d-dit-v2-0/"
                                    "model.fp16.safetensors"),
    WAN_VACE: ("diffusion_models", _WAN + "diffusion_models/" + WAN_VACE),
    WAN_TEXT: ("text_encoders", _WAN + "text_encoders/" + WAN_TEXT),
    WAN_VAE: ("vae", _WAN + "vae/" + WAN_VAE),
}
RENAME_AFTER_DOWNLOAD = {HUNYUAN3D_CKPT}  # the host's file name differs: the note says to rename it
MODEL_INPUTS = ("ckpt_name", "control_net_name", "unet_name", "clip_name", "vae_name")  # widgets that name a file in MODELS
FRONTEND_ONLY = {"MarkdownNote"}  # nodes the front end draws and never sends to /prompt
WALK_CYCLE = "\n".join(["walk_left_step frames=6 ease=in_out", "walk_right_step frames=6 ease=in_out"] * 2
                       + ["walk_left_step  # the cycle's 24 frames, then its closing frame (25 = 4 x 6 + 1)"])
VIDEO_POSITIVE = ("a young woman in a red bomber jacket, white t-shirt and blue jeans walking down a quiet city "
                  "street at dusk, full body, smooth camera tracking shot, cinematic light")

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

    def __init__(self, name: str, info: dict, title: str):
        """name: the API copy's file name; title: the UI template's file name, what people see."""
        self.name, self.info, self.title, self.nodes, self.groups = name, info, title, [], []
        self.column_y = {}  # x -> the first free y in that column

    def note(self, pos, size, text):
        """A Markdown note on the canvas (front end only: not in the API copy)."""
        node = Node(self, len(self.nodes) + 1, "MarkdownNote", {"text": text}, list(pos), list(size), None)
        self.nodes.append(node)
        return node

    def models(self) -> list:
        """[{name, url, directory}] for every model file a widget names, in first-use order."""
        out = []
        for node in self.nodes:
            for key in MODEL_INPUTS:
                name = node.values.get(key)
                if name is not None and all(m["name"] != name for m in out):
                    directory, url = MODELS[name]
                    out.append({"name": name, "url": url, "directory": directory})
        return out

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
        size = [320, 40 + 24 * max(sockets, outputs) + 28 * widgets]  # 24 px to spare: Vue nodes are taller
        if class_type in VIEWER_NODES:  # the node grows to hold the viewer: leave it the room
            size = [max(size[0], VIEWER_MIN_WIDTH), size[1] + VIEWER_NODES[class_type]]
        return size

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
            if node.class_type in FRONTEND_ONLY:
                continue
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
            if node.class_type in FRONTEND_ONLY:
                node_inputs[node.id] = ins
                continue
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
            if node.class_type in FRONTEND_ONLY:
                nodes.append({"id": node.id, "type": node.class_type, "title": "About this template",
                              "pos": node.pos, "size": node.size,
                              "flags": {}, "order": order[node.id], "mode": 0, "inputs": [], "outputs": [],
                              "properties": {}, "widgets_values": [node.values["text"]],
                              "color": "#232", "bgcolor": "#353"})
                continue
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
            properties = {"Node name for S&R": node.class_type}
            models = [m for m in self.models() if m["name"] in [node.values.get(k) for k in MODEL_INPUTS]]
            if models:
                properties["models"] = models
            entry = {"id": node.id, "type": node.class_type, "pos": node.pos,
                     "size": node.size,
                     "flags": {}, "order": order[node.id], "mode": 0,
                     "inputs": node_inputs[node.id], "outputs": outputs,
                     "properties": properties, "widgets_values": widgets}
            if node.title:
                entry["title"] = node.title
            nodes.append(entry)
        out = {"last_node_id": len(self.nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
               "groups": self.groups, "config": {},
               "extra": {"ds": getattr(self, "extra_ds", None) or {"scale": 0.75, "offset": [0, 0]}},
               "version": 0.4}
        if self.models():
            out["models"] = self.models()
        return out


# ------------------------------------------------------------------------------------------------
# The workflows. x columns: spec nodes 0, batch 400, loaders and prompts 800, ControlNets 1200,
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


# The 3D viewer (web/js/viewer.js) on these nodes: the height its widget takes (VIEWER_HEIGHT there,
# and the posing controls under it on Pose From JSON), and the width it gives the node at least.
VIEWER_NODES = {"PoseFactoryRequestPoseBatch": 330, "PoseFactoryMannequin": 330, "PoseFactoryPosePreset": 330,
                "PoseFactoryPoseFromJSON": 440, "PoseFactoryPoseSequence": 330, "PoseFactoryCameraOrbit": 330,
                "PoseFactoryCameraList": 330}
VIEWER_MIN_WIDTH = 360

# A loader shows a grid of what it loaded under its widgets once it has run: its size leaves room
# for it, so the preview fits the node and never covers the node below (the front end grows a
# node that is too small for its preview, over its neighbour).
LOADER_EXTRA_WIDGETS = 1   # the "refresh batches" button web/js/pose_factory.js adds
LOADER_PREVIEW_HEIGHT = 320


def loader(wf, class_type, pos, title=None, **inputs):
    w, h = wf._auto_size(class_type, inputs)
    return wf.add(class_type, pos, size=[w, h + 28 * LOADER_EXTRA_WIDGETS + LOADER_PREVIEW_HEIGHT], title=title,
                  **inputs)


def load_pose(wf, batch, pos):
    return loader(wf, "PoseFactoryLoadPoseFromR2", pos, batch=batch[0], project="examples", batch_id="",
                  views="all", frames="all", order="view_major", hands=True, face=True)


def load_depth_normal(wf, batch, pos):
    return loader(wf, "PoseFactoryDepthNormalLoader", pos, batch=batch[0], project="examples", batch_id="",
                  views="all", frames="all", order="view_major", depth_range="batch",
                  normal_convention="controlnet", parts="hands")


WORKER_NEEDS = ("the pack's local worker (Blender as a Python module): set it up once as the README says "
                "(`scripts/setup_worker.sh`); a re-run with the same settings is served from storage")


def add_note(wf, makes, change, pos=(-460, 0), size=(420, 460)):
    """The template's note: what it makes, what it needs (models with their links and folders, the
    worker) and what to change. Added last, so it lists every model the graph names."""
    lines = [f"## {wf.title}", "", f"**Makes:** {makes}", "", "**Needs:**"]
    for m in wf.models():
        rename = (f" (the host names it `{m['url'].rsplit('/', 1)[1]}`: save it as `{m['name']}`)"
                  if m["name"] in RENAME_AFTER_DOWNLOAD else "")
        lines.append(f"- [{m['name']}]({m['url']}) in `ComfyUI/models/{m['directory']}/`{rename}")
    if wf.models():
        lines.append("  (the Missing Models panel, under View details, offers these downloads; press R after to "
                     "refresh the model lists)")
    else:
        lines.append("- no model files")
    lines += [f"- {WORKER_NEEDS}", "", f"**Change:** {change}", "",
              "Batches are listed in the *Pose batches* sidebar tab; clicking one puts it into the "
              "selected loader."]
    return wf.note(pos, size, "\n".join(lines))


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
    wf = Workflow("pose_batch_openpose_sdxl", info, "OpenPose to SDXL - 4 poses")
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
    add_note(wf, "4 SDXL images (832x1216), one per pose (waving, fighting stance, running, hands on "
                 "hips), each following the OpenPose skeleton the pack renders from its 3D mannequin.",
             "the poses in the Pose Preset nodes, the camera in Camera Orbit, the text in Positive prompt.")
    return wf


def multi_controlnet_sdxl(info):
    wf = Workflow("pose_batch_multi_controlnet_sdxl", info, "Depth, normal, pose to SDXL")
    presets = [("sitting", "relaxed"), ("kneeling_one_knee", "preset default"), ("reaching_up", "open"),
               ("dance_disco", "preset default")]
    batch = pose_spec(wf, presets, views=1, start_azimuth=30.0, elevation=8.0, width=832, height=1216)
    pose = load_pose(wf, batch, 800)
    dn = load_depth_normal(wf, batch, 800)
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
    add_note(wf, "4 SDXL images (832x1216) guided by three ControlNets at once: the batch's depth and "
                 "normal maps (one union ControlNet, switched by Set Union ControlNet Type) and its "
                 "OpenPose skeletons.",
             "each Apply node's strength and end percent to weigh depth, normal and pose.")
    return wf


def character_sheet(info):
    wf = Workflow("character_sheet_4_views", info, "Character sheet - 4 views")
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
    add_note(wf, "a turnaround sheet: one pose seen from the front, side, back and other side (4 "
                 "cameras 90 degrees apart), generated as 4 SDXL images and tiled into one.",
             "the views in Camera Orbit (and the grid's columns), the character in Positive prompt.")
    return wf


def preview_grid(wf, x, previews, cols):
    """A PreviewImage per (title, image output), in rows of cols columns from x."""
    for i, (title, src) in enumerate(previews):
        wf.add("PreviewImage", x + 400 * (i % cols), size=[360, 380], title=title, images=src)


def no_model_preview(info):
    wf = Workflow("no_model_preview", info, "Pose preview - no models")
    presets = [("a_pose", "preset default"), ("waving", "open"), ("fighting_stance", "fist")]
    batch = pose_spec(wf, presets, views=4, start_azimuth=0.0, elevation=10.0, width=512, height=512)
    pose = load_pose(wf, batch, 800)
    dn = load_depth_normal(wf, batch, 800)
    redraw = wf.add("PoseFactoryPoseKeypointsToImage", 800, title="Redraw from keypoints (SDXL sticks)",
                    pose_keypoint=pose[1], hands=True, face=False, sdxl_sticks=True)
    mask = wf.add("MaskToImage", 800, mask=dn[4])
    previews = [("OpenPose", pose[0]), ("Shaded", pose[2]), ("Depth", dn[0]), ("Normal", dn[1]),
                ("Segmentation", dn[2]), ("Keypoints redrawn", redraw[0]), ("Hands mask", mask[0])]
    preview_grid(wf, 1200, previews, 4)
    add_note(wf, "a pose batch (3 poses from 4 views) and a preview of every pass the pack renders: "
                 "OpenPose, shaded, depth, normal, segmentation, keypoints redrawn, a hands mask. "
                 "Start here: it runs with no model files.",
             "the presets, the number of views, the size; then try a loader's views/frames selection.")
    return wf


def mesh_from_mannequin_views(info):
    """No model files: the mannequin from the 8 canonical views → Request Mesh From Images (visual hull)
    → Preview 3D, and its passes from 4 new views."""
    wf = Workflow("mesh_from_mannequin_views", info, "Mesh from views - no models")
    mv = wf.add("PoseFactoryMultiViewPrompts", 0, subject="a clay mannequin", views="8")
    subject = wf.add("PoseFactoryMannequin", 0, height=1.75, build="average")
    pose = wf.add("PoseFactoryPosePreset", 0, preset="a_pose", mirror=False, hands="preset default")
    batch = wf.add("PoseFactoryRequestPoseBatch", 400, subject=subject[0], poses=pose[0], cameras=mv[1], width=384,
                   height=384, depth=False, normal=False, seg=True, shaded=True, depth_range="batch", hands=True,
                   face=True, sdxl_sticks=False, backend="local", project="examples", force=False)
    views = load_pose(wf, batch, 400)
    mesh = wf.add("PoseFactoryRequestMeshFromImages", 800, images=views[2], batch=batch[0],
                  reconstruction="visual_hull", quality_tier="standard", format="glb", smooth=10,
                  target_faces=20000, uvs=True, backend="local", project="examples", force=False)
    wf.add("Preview3D", 1200, size=[420, 420], title="The mesh (Preview 3D)", model_file=mesh[1])
    orbit = wf.add("PoseFactoryCameraOrbit", 800, views=4, elevation=20.0, distance=0.0, focal_length=50.0,
                   orthographic=False, roll=0.0, start_azimuth=45.0)
    passes = wf.add("PoseFactoryRenderMeshPasses", 800, cameras=orbit[0], pose_factory_mesh=mesh[0], width=512,
                    height=512, depth_range="batch", shading="smooth", project="examples", force=False)
    dn = load_depth_normal(wf, passes, 1200)
    for i, (title, src) in enumerate([("Input views", views[2]), ("Mesh depth", dn[0]), ("Mesh normal", dn[1]),
                                      ("Mesh seg", dn[2])]):
        wf.add("PreviewImage", 1660 + 400 * (i % 2), size=[360, 380], title=title, images=src)
    # the mesh as a prop in a pose scene: a statue of the A-pose beside a waving figure
    prop = wf.add("PoseFactoryPoseProp", 2460, title="The mesh as a prop (a statue beside the figure)",
                  pose_factory_mesh=mesh[0], location_x=0.9, location_y=0.4, location_z=0.0, rotation_x=0.0,
                  rotation_y=0.0, rotation_z=-30.0, scale=1.0, shading="smooth")
    wave = wf.add("PoseFactoryPosePreset", 2460, preset="waving", mirror=False, hands="preset default")
    # an orbit's automatic distance fits the person only: a set distance keeps the prop in frame
    scene_cams = wf.add("PoseFactoryCameraOrbit", 2460, views=4, elevation=15.0, distance=5.5, focal_length=50.0,
                        orthographic=False, roll=0.0, start_azimuth=20.0)
    scene = wf.add("PoseFactoryRequestPoseBatch", 2860, subject=subject[0], poses=wave[0], cameras=scene_cams[0],
                   width=512, height=512, depth=True, normal=True, seg=False, shaded=True, depth_range="batch",
                   hands=True, face=True, sdxl_sticks=False, backend="local", project="examples", force=False,
                   props=prop[0])
    scene_dn = load_depth_normal(wf, scene, 3260)
    wf.add("PreviewImage", 3700, size=[360, 380], title="Pose scene with the prop (depth)", images=scene_dn[0])
    add_note(wf, "a 3D mesh of the mannequin from its 8 canonical views (visual hull, no learned model), "
                 "shown in Preview 3D, then its exact depth, normal and seg passes from 4 new cameras; and the "
                 "mesh placed as a prop (Pose Prop) beside a waving figure, rendered with it in every pass "
                 "(it hides the joints behind it).",
             "the subject and pose, the number of views in Multi-View Prompts, the faces and format of the mesh, "
             "the prop's place, turn and scale.")
    return wf


def core_image_to_3d_passes(info):
    """Core's image-to-3D (Hunyuan3D 2.0: hunyuan3d-dit-v2.safetensors in models/checkpoints) → its MESH
    straight into Render Mesh Passes → depth/normal ControlNet images from 8 views."""
    wf = Workflow("core_image_to_3d_mesh_passes", info, "Image to 3D - mesh passes")
    ckpt = wf.add("ImageOnlyCheckpointLoader", 0, size=[340, 98], ckpt_name=HUNYUAN3D_CKPT)
    image = wf.add("LoadImage", 0, size=[340, 320], title="The object (plain background)", image="example.png")
    clip = wf.add("CLIPVisionEncode", 400, clip_vision=ckpt[1], image=image[0], crop="none")
    cond = wf.add("Hunyuan3Dv2Conditioning", 400, clip_vision_output=clip[0])
    latent = wf.add("EmptyLatentHunyuan3Dv2", 400, resolution=3072, batch_size=1)
    ks = wf.add("KSampler", 800, size=[320, 262], model=ckpt[0], seed=42, control_after_generate="fixed", steps=30,
                cfg=5.0, sampler_name="euler", scheduler="normal", positive=cond[0], negative=cond[1],
                latent_image=latent[0], denoise=1.0)
    voxel = wf.add("VAEDecodeHunyuan3D", 800, samples=ks[0], vae=ckpt[2], num_chunks=8000, octree_resolution=256)
    mesh = wf.add("VoxelToMeshBasic", 800, voxel=voxel[0], threshold=0.6)
    wf.add("SaveGLB", 1200, size=[380, 420], mesh=mesh[0], filename_prefix="pose_factory/image_to_3d")  # its 3D preview
    orbit = wf.add("PoseFactoryCameraOrbit", 1200, views=8, elevation=15.0, distance=0.0, focal_length=50.0,
                   orthographic=False, roll=0.0, start_azimuth=0.0)
    passes = wf.add("PoseFactoryRenderMeshPasses", 1200, cameras=orbit[0], mesh=mesh[0], width=512, height=512,
                    depth_range="batch", shading="smooth", project="examples", force=False)
    dn = load_depth_normal(wf, passes, 1600)
    wf.add("PreviewImage", 2000, size=[360, 380], title="Depth, 8 views", images=dn[0])
    wf.add("PreviewImage", 2000, size=[360, 380], title="Normal, 8 views", images=dn[1])
    add_note(wf, "core's image-to-3D (Hunyuan3D 2.0) turns one photo of an object into a mesh; Render Mesh "
                 "Passes renders its exact depth and normal maps from 8 cameras for ControlNet.",
             "the photo in Load Image (an object on a plain background), the cameras in Camera Orbit.")
    return wf


def walk_batch(wf):
    """The walk cycle (Pose Sequence, walking 2 m) from 2 views with a rig that follows the root."""
    subject = wf.add("PoseFactoryMannequin", 0, height=1.75, build="average")
    poses = wf.add("PoseFactoryPoseSequence", 0, size=[VIEWER_MIN_WIDTH, 260 + VIEWER_NODES["PoseFactoryPoseSequence"]],
                   title="Walk cycle (24 frames + closing frame)",
                   poses=WALK_CYCLE, path="walk_forward", path_amount=2.0)
    cams = wf.add("PoseFactoryCameraOrbit", 0, views=2, elevation=5.0, distance=0.0, focal_length=50.0,
                  orthographic=False, roll=0.0, start_azimuth=30.0, follow=True)
    return wf.add("PoseFactoryRequestPoseBatch", 400, subject=subject[0], poses=poses[0], cameras=cams[0],
                  width=512, height=512, depth=True, normal=False, seg=False, shaded=True, depth_range="batch",
                  hands=True, face=True, sdxl_sticks=False, backend="local", project="examples", force=False)


def walk_loaders(wf, batch, view):
    """Frames x one view, frame-major: a clip ready for a video graph."""
    pose = loader(wf, "PoseFactoryLoadPoseFromR2", 800, title=f"OpenPose frames, view {view}", batch=batch[0],
                  project="examples", batch_id="", views=str(view), frames="all", order="frame_major",
                  hands=True, face=True)
    dn = loader(wf, "PoseFactoryDepthNormalLoader", 800, title=f"Depth frames, view {view}", batch=batch[0],
                project="examples", batch_id="", views=str(view), frames="all", order="frame_major",
                depth_range="batch", normal_convention="controlnet", parts="hands")
    return pose, dn


def motion_walk_vace(info):
    wf = Workflow("motion_walk_vace_wan", info, "Walk video - Wan VACE")
    batch = walk_batch(wf)
    pose, dn = walk_loaders(wf, batch, 0)
    control = wf.add("ImageBlend", 1200, title="OpenPose over depth (control video)", image1=dn[0], image2=pose[0],
                     blend_factor=1.0, blend_mode="screen")
    unet = wf.add("UNETLoader", 1200, size=[340, 82], unet_name=WAN_VACE, weight_dtype="default")
    clip = wf.add("CLIPLoader", 1200, size=[340, 106], clip_name=WAN_TEXT, type="wan")
    vae = wf.add("VAELoader", 1200, size=[340, 58], vae_name=WAN_VAE)
    pos = wf.add("CLIPTextEncode", 1600, size=[340, 160], title="Positive prompt", clip=clip[0], text=VIDEO_POSITIVE)
    neg = wf.add("CLIPTextEncode", 1600, size=[340, 120], title="Negative prompt", clip=clip[0], text=NEGATIVE)
    vace = wf.add("WanVaceToVideo", 1600, positive=pos[0], negative=neg[0], vae=vae[0], width=512, height=512,
                  length=25, batch_size=1, strength=1.0, control_video=control[0])
    ks = wf.add("KSampler", 2000, size=[320, 262], model=unet[0], seed=42, control_after_generate="fixed", steps=20,
                cfg=6.0, sampler_name="uni_pc", scheduler="simple", positive=vace[0], negative=vace[1],
                latent_image=vace[2], denoise=1.0)
    trim = wf.add("TrimVideoLatent", 2000, samples=ks[0], trim_amount=0)
    dec = wf.add("VAEDecode", 2000, samples=trim[0], vae=vae[0])
    wf.add("SaveAnimatedWEBP", 2400, size=[420, 480], images=dec[0], filename_prefix="pose_factory/walk_vace",
           fps=12.0, lossless=False, quality=90, method="default")
    wf.add("PreviewImage", 2400, size=[420, 420], title="Control video", images=control[0])
    add_note(wf, "a 25-frame walk cycle rendered from the 3D mannequin (2 cameras following it), its OpenPose "
                 "skeleton laid over its depth as the control video of Wan 2.1 VACE, which makes a 512x512 clip.",
             "the walk in Pose Sequence (or a BVH clip with Motion Clip), the view in the loaders, the prompt.")
    return wf


def motion_walk_preview(info):
    wf = Workflow("motion_walk_preview", info, "Walk cycle - no models")
    batch = walk_batch(wf)
    for view in (0, 1):
        pose, dn = walk_loaders(wf, batch, view)
        wf.add("SaveAnimatedWEBP", 1200 + 400 * view, size=[360, 420], title=f"OpenPose clip, view {view}",
               images=pose[0], filename_prefix=f"pose_factory/walk_openpose_v{view}", fps=12.0, lossless=True,
               quality=90, method="default")
        wf.add("SaveAnimatedWEBP", 1200 + 400 * view, size=[360, 420], title=f"Depth clip, view {view}",
               images=dn[0], filename_prefix=f"pose_factory/walk_depth_v{view}", fps=12.0, lossless=True,
               quality=90, method="default")
    add_note(wf, "a 25-frame walk cycle from 2 cameras following the mannequin, as animated OpenPose and "
                 "depth clips (frames of one view, frame-major), ready for a video ControlNet graph.",
             "the lines of Pose Sequence (frames= and ease=), the path, the cameras; or use Motion Clip.")
    return wf


# the pack's example photos in ComfyUI's input folder (pose_factory/example_inputs.py: PHOTOS)
EXAMPLE_PHOTO, EXAMPLE_FRONT, EXAMPLE_SIDE = ("pose_factory_photo.png", "pose_factory_posture_front.png",
                                              "pose_factory_posture_side.png")


def photo_to_pose(info):
    """A photo from ComfyUI's input folder -> Extract Pose and Pose From Photo -> a 4-view pose batch ->
    previews; and Posture Analysis on a front and a side photo. No model files: MediaPipe's model is
    inside its wheel, in the worker environment. The photos are the pack's examples (renders of the
    mannequin, copied into the input folder when the pack loads: pose_factory/example_inputs.py), so
    the template runs on its first click."""
    wf = Workflow("photo_to_pose", info, "Photo to pose - no models")
    photo = wf.add("LoadImage", 0, size=[340, 380], title="Photo (a person, from the input folder)", image=EXAMPLE_PHOTO)
    extracted = wf.add("PoseFactoryExtractPose", 400, image=photo[0], hands=True, sdxl_sticks=False, face=True)
    fitted = wf.add("PoseFactoryPoseFromPhoto", 400, image=photo[0])
    subject = wf.add("PoseFactoryMannequin", 0, height=1.75, build="average")
    cams = wf.add("PoseFactoryCameraOrbit", 0, views=4, elevation=10.0, distance=0.0, focal_length=50.0,
                  orthographic=False, roll=0.0, start_azimuth=0.0)
    batch = wf.add("PoseFactoryRequestPoseBatch", 800, subject=subject[0], poses=fitted[0], cameras=cams[0],
                   width=512, height=512, depth=False, normal=False, seg=False, shaded=True,
                   depth_range="batch", hands=True, face=True, sdxl_sticks=False, backend="local",
                   project="examples", force=False)
    pose = load_pose(wf, batch, 1200)
    wf.add("PreviewImage", 1600, size=[360, 380], title="Skeleton extracted from the photo", images=extracted[0])
    wf.add("PreviewImage", 1600, size=[360, 380], title="The photo's pose from 4 views (OpenPose)", images=pose[0])
    wf.add("PreviewImage", 1600, size=[360, 380], title="The photo's pose from 4 views (shaded)", images=pose[2])
    front = wf.add("LoadImage", 0, size=[340, 380], title="Posture: front photo", image=EXAMPLE_FRONT)
    side = wf.add("LoadImage", 0, size=[340, 380], title="Posture: side photo", image=EXAMPLE_SIDE)
    posture = wf.add("PoseFactoryPostureAnalysis", 400, front_image=front[0], side_image=side[0])
    wf.add("PreviewImage", 1600, size=[540, 320], title="Posture: measured lines", images=posture[9])
    add_note(wf, "a photo's pose, found by MediaPipe (offline, in the worker), as an OpenPose skeleton, and "
                 "fitted onto the 3D mannequin so it renders exactly from 4 new views; and posture angles "
                 "from a front and a side photo.",
             "the photos in Load Image (a person, whole body; the pack's example photos are renders of its "
             "mannequin).")
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
    wf = Workflow("posing_in_3d", info, "Posing in 3D - no models")
    subject = wf.add("PoseFactoryMannequin", (0, 0), height=1.75, build="average")
    pose = wf.add("PoseFactoryPoseFromJSON", (0, subject.size[1] + 60), size=[440, 640], preset="waving",
                  joints=json.dumps({"l_elbow": {"flex": 70}, "neck": {"twist": 20}}))
    cams = wf.add("PoseFactoryCameraList", (480, 0), size=[440, 560],
                  cameras=json.dumps(SAVED_VIEWS, separators=(", ", ": ")))
    batch = wf.add("PoseFactoryRequestPoseBatch", (480, 620), size=[440, 820], subject=subject[0], poses=pose[0],
                   cameras=cams[0], width=384, height=512, depth=False, normal=False, seg=False, shaded=True,
                   depth_range="batch", hands=True, face=True, sdxl_sticks=False, backend="local",
                   project="examples", force=False)
    loaded = load_pose(wf, batch, (960, 0))
    below = loaded.size[1] + 40
    wf.add("PreviewImage", (960, below), size=[420, 380], title="OpenPose (rendered)", images=loaded[0])
    wf.add("PreviewImage", (960, below + 420), size=[420, 380], title="Shaded (rendered)", images=loaded[2])
    add_note(wf, "a figure posed by hand in the 3D viewer (click a joint, drag its rings), seen from three "
                 "saved views (Camera List), rendered exactly by the worker and previewed.",
             "the pose in the viewer on Pose from JSON, the views with its 'add this view' button.",
             pos=(0, pose.pos[1] + 700), size=(440, 460))  # under the pose: the graph stays narrow, its viewers legible
    wf.extra_ds = {"scale": 0.62, "offset": [20, 20]}
    return wf


# --- people (issue 22): several people in one scene, and a user's own rig --------------------------
TWO_PEOPLE_POSITIVE = ("a tall broad-shouldered man in a dark grey suit and a little girl in a yellow raincoat "
                       "standing side by side in a quiet park, full body, soft daylight, sharp focus, high detail")
TEMPLATE_RIG = "3d/pose_factory_mannequin_rig.glb"  # pose_factory/example_inputs.py puts it into ComfyUI's input


def two_people_batch(wf, width, height, x0=0):
    """A tall and a short mannequin (two Scene nodes: person 0 on the left, person 1 on the right,
    turned a little towards each other) from 4 views. The tall one takes the request's pose, the
    short one has its own."""
    tall = wf.add("PoseFactoryMannequin", x0, title="Tall figure", height=1.95, build="heavy", proportions="heroic")
    short = wf.add("PoseFactoryMannequin", x0, title="Short figure", height=1.2, build="slim", proportions="child")
    cams = wf.add("PoseFactoryCameraOrbit", x0, views=4, elevation=5.0, distance=0.0, focal_length=50.0,
                  orthographic=False, roll=0.0, start_azimuth=0.0)
    pose = wf.add("PoseFactoryPosePreset", x0 + 400, title="Pose (everyone without their own)",
                  preset="hands_on_hips", mirror=False, hands="preset default")
    wave = wf.add("PoseFactoryPosePreset", x0 + 400, title="The short figure's own pose", preset="waving",
                  mirror=False, hands="open")
    first = wf.add("PoseFactoryScene", x0 + 400, title="Person 0: the tall figure, left", subject=tall[0],
                   position_x=-0.45, position_y=0.0, facing=20.0)
    second = wf.add("PoseFactoryScene", x0 + 400, title="Person 1: the short figure, right", subject=short[0],
                    poses=wave[0], position_x=0.45, position_y=-0.1, facing=-20.0, scene=first[0])
    return wf.add("PoseFactoryRequestPoseBatch", x0 + 800, subject=second[0], poses=pose[0], cameras=cams[0],
                  width=width, height=height, depth=True, normal=True, seg=True, shaded=True, depth_range="batch",
                  hands=True, face=True, sdxl_sticks=False, backend="local", project="examples", force=False)


def two_people_sdxl(info):
    wf = Workflow("two_people_controlnet_sdxl", info, "Two people - OpenPose and depth to SDXL")
    batch = two_people_batch(wf, 1216, 832)
    pose = load_pose(wf, batch, 1200)
    dn = load_depth_normal(wf, batch, 1200)
    ckpt, pos, neg, latent = sdxl_base(wf, 1600, TWO_PEOPLE_POSITIVE, 1216, 832, 4)
    union = wf.add("ControlNetLoader", 2000, size=[340, 60], title="ControlNet union (depth)",
                   control_net_name=UNION_CN)
    as_depth = wf.add("SetUnionControlNetType", 2000, control_net=union[0], type="depth")
    op = wf.add("ControlNetLoader", 2000, size=[340, 60], title="ControlNet OpenPose", control_net_name=OPENPOSE_CN)
    a1 = wf.add("ControlNetApplyAdvanced", 2000, title="Apply depth", positive=pos[0], negative=neg[0],
                control_net=as_depth[0], image=dn[0], strength=0.5, start_percent=0.0, end_percent=0.6)
    a2 = wf.add("ControlNetApplyAdvanced", 2000, title="Apply OpenPose", positive=a1[0], negative=a1[1],
                control_net=op[0], image=pose[0], strength=0.85, start_percent=0.0, end_percent=1.0)
    dec = sample(wf, 2400, ckpt, a2[0], a2[1], latent)
    wf.add("PreviewImage", 2400, size=[340, 300], title="OpenPose conditioning (both people)", images=pose[0])
    wf.add("SaveImage", 2800, size=[620, 460], images=dec[0], filename_prefix="pose_factory/two_people_sdxl")
    add_note(wf, "4 SDXL images (1216x832), one per view (front, left, back, right), of two people of very "
                 "different size (a tall heroic figure and a child, two Scene nodes) guided by both skeletons "
                 "(OpenPose) and their depth (ControlNet union), so the picture keeps who is tall, who is small "
                 "and who stands in front.",
             "each person's Mannequin (height, build, shape), their places in the Scene nodes (metres on the "
             "floor, facing in degrees), the short figure's own pose, the shared pose; a loader's person "
             "widget gives one person's skeleton or mask.")
    return wf


def two_people_preview(info):
    wf = Workflow("two_people_preview", info, "Two people - no models")
    batch = two_people_batch(wf, 512, 512)
    pose = load_pose(wf, batch, 1200)
    dn = load_depth_normal(wf, batch, 1200)
    one = loader(wf, "PoseFactoryLoadPoseFromR2", 1600, title="Load Pose Batch: person 1 only", batch=batch[0],
                 project="examples", batch_id="", views="all", frames="all", order="view_major", hands=True,
                 face=True, person="1")
    mask = loader(wf, "PoseFactoryDepthNormalLoader", 1600, title="Load Depth / Normal / Seg: person 0's mask",
                  batch=batch[0], project="examples", batch_id="", views="all", frames="all", order="view_major",
                  depth_range="batch", normal_convention="controlnet", parts="all", person="0")
    mask_img = wf.add("MaskToImage", 2000, mask=mask[3])
    previews = [("OpenPose (everyone)", pose[0]), ("Shaded", pose[2]), ("Depth", dn[0]),
                ("Segmentation", dn[2]), ("OpenPose (person 1)", one[0]), ("Mask (person 0)", mask_img[0])]
    preview_grid(wf, 2400, previews, 3)
    add_note(wf, "two people in one scene (a tall heroic figure and a child, two Scene nodes) from 4 views: "
                 "every pass with both, and a loader's person choice: person 1's skeleton alone, person 0's "
                 "mask alone (from the instance map). Runs with no model files.",
             "the Mannequins, the places in the Scene nodes, the poses; chain more Scene nodes (up to 8 people).")
    return wf


def custom_rig_preview(info):
    wf = Workflow("custom_rig_preview", info, "Custom rig - no models")
    rig = wf.add("PoseFactoryCustomRig", 0, size=[400, 300], rig_file=TEMPLATE_RIG, path_or_key="", bone_map="mixamo",
                 custom_map="", height=0.0)
    wf.add("PreviewAny", 0, size=[400, 300], title="Rig report", source=rig[1])
    poses = wf.add("PoseFactoryPoseSequence", 0, size=[VIEWER_MIN_WIDTH, 260 + VIEWER_NODES["PoseFactoryPoseSequence"]],
                   title="Poses", poses="a_pose\nwaving hands=open\nfighting_stance")
    cams = wf.add("PoseFactoryCameraOrbit", 0, views=2, elevation=8.0, distance=0.0, focal_length=50.0,
                  orthographic=False, roll=0.0, start_azimuth=20.0)
    batch = wf.add("PoseFactoryRequestPoseBatch", 460, subject=rig[0], poses=poses[0], cameras=cams[0], width=512,
                   height=512, depth=True, normal=True, seg=True, shaded=True, depth_range="batch", hands=True,
                   face=True, sdxl_sticks=False, backend="local", project="examples", force=False)
    pose = load_pose(wf, batch, 860)
    dn = load_depth_normal(wf, batch, 860)
    previews = [("OpenPose", pose[0]), ("Shaded", pose[2]), ("Depth", dn[0]), ("Normal", dn[1])]
    preview_grid(wf, 1260, previews, 2)
    add_note(wf, "your own character instead of the mannequin: Custom Rig reads a rigged humanoid (here the pack's "
                 "own mannequin exported as a GLB with Mixamo bone names, put into ComfyUI's input/3d/ once), maps "
                 "its bones to our joints and reports what it found; every preset and pass then works on it. Runs "
                 "with no model files.",
             "rig_file to your FBX, GLB, VRM or .blend in ComfyUI's input folder (press R after adding one), "
             "bone_map to how its bones are named (auto guesses), height 0 keeps its own size.")
    return wf


WORKFLOWS = (openpose_sdxl, multi_controlnet_sdxl, character_sheet, no_model_preview, mesh_from_mannequin_views,
             core_image_to_3d_passes, motion_walk_vace, motion_walk_preview, photo_to_pose, posing_in_3d,
             two_people_sdxl, two_people_preview, custom_rig_preview)


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
        for path, data in ((out / f"{wf.title}.json", wf.ui()), (out / "api" / f"{wf.name}.json", wf.api())):
            path.write_text(dump(data), encoding="utf-8")
            written.append(path)
    return written


# ------------------------------------------------------------------------------------------------
# Thumbnails: the workflow's own pose batch, rendered by the pack.

def thumbnail_spec(wf: Workflow, longest: int = 512, storage=None, project: str = "thumbs") -> dict:
    """The JobSpec the workflow's RequestPoseBatch builds (through our nodes' own code), at most
    `longest` px on its longest side (multiples of 8). A file a node takes from ComfyUI's input
    folder (Custom Rig's rig) comes from the pack's example inputs (example_workflows/input/, what
    the pack copies there); storage given: a rig's file is stored in it under project."""
    import types

    sys.path.insert(0, str(ROOT))
    import nodes as pack_nodes  # the pack's nodes package
    from nodes.batch_nodes import build_spec

    # after the import (which would copy the example inputs into the folder it names: refused, inside the pack)
    sys.modules.setdefault("folder_paths", types.SimpleNamespace(
        get_input_directory=lambda: str(ROOT / "example_workflows" / "input")))

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
    if storage is not None:
        args.update(storage=storage, project=project)
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
    "mesh_from_mannequin_views": (["shaded", "seg"], "transpose", (128, 128)),
    "core_image_to_3d_mesh_passes": (["depth", "normal"], "transpose", (128, 128)),
    "motion_walk_vace_wan": (["openpose", "depth", "shaded"], [(0, 0), (0, 6), (0, 12), (0, 18)], (128, 128)),
    "motion_walk_preview": (["openpose", "depth"], [(0, 0), (0, 8), (1, 4), (1, 12)], (128, 128)),
    "posing_in_3d": (["shaded", "openpose"], "transpose", (128, 170)),
    "two_people_controlnet_sdxl": (["overlay", "depth"], "transpose", (128, 96)),
    "two_people_preview": (["shaded", "openpose", "depth", "seg"], [(0, 0), (1, 0), (3, 0)], (128, 128)),
    "custom_rig_preview": (["shaded", "openpose", "depth", "normal"], [(0, 0), (0, 1), (1, 2)], (128, 128)),
}


def mesh_thumbnail_batch(wf: Workflow, storage) -> dict:
    """A workflow without a pose batch (its mesh comes from a model): the passes of a stand-in
    shape (a torus, trimesh) from the workflow's own Render Mesh Passes camera rig, at 256 px."""
    import trimesh

    from pose_factory.mesh.passes import render_mesh_passes

    node = next(n for n in wf.nodes if n.class_type == "PoseFactoryCameraOrbit")
    cls = __import__("nodes").NODE_CLASS_MAPPINGS[node.class_type]
    cams = cls().make(**node.values)[0]
    torus = trimesh.creation.torus(major_radius=0.6, minor_radius=0.22)
    torus.apply_transform(trimesh.transformations.rotation_matrix(0.9, [1, 0, 0]))
    spec = {"render": {"width": 256, "height": 256, "passes": ["depth", "normal"]}, "cameras": cams}
    return render_mesh_passes((torus.vertices, torus.faces), spec, storage, project="thumbs")[0]


def photo_thumbnail(wf: Workflow, out_path: Path, workdir: Path) -> Path:
    """photo_to_pose's thumbnail: our shaded render of a pose as the photo, the skeleton MediaPipe
    finds on it, and the fitted pose rendered from four views (needs bpy and MediaPipe)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from pose_factory import imageio
    from pose_factory.render import openpose
    from pose_factory.extract import keypoint_frame
    from pose_factory.extract.detector import Detector
    from pose_factory.extract.fit import fit_world_landmarks
    from pose_factory.extract.mapping import MIN_VISIBILITY
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage, batch_prefix

    storage = LocalStorage(workdir)

    def render(poses, views, passes):
        spec = {"render": {"width": 384, "height": 384, "passes": passes},
                "cameras": {"type": "orbit", "views": views, "elevation": 10, "start_azimuth": 0},
                "subjects": [{"type": "mannequin", "poses": poses}]}
        manifest, _ = render_batch(spec, storage, project="thumbs")
        bdir = storage.local_path(batch_prefix("thumbs", manifest["batch_id"]))
        return [(e, bdir) for e in manifest["entries"]]

    (entry, bdir), = render(["waving"], 1, ["keypoints", "shaded"])
    photo = imageio.read_png(str(bdir / entry["files"]["shaded"]["key"]))
    found = Detector().detect(photo)
    skeleton = openpose.draw_pose(keypoint_frame(found.landmarks, 384, 384), face=False)
    fit = fit_world_landmarks(found.world, found.landmarks, 384, 384, MIN_VISIBILITY)  # the node's default
    views = [imageio.read_png(str(d / e["files"]["openpose"]["key"])) for e, d in render([fit["pose"]], 4, ["openpose"])]
    cells = [Image.fromarray(np.asarray(a)[:, :, :3].astype(np.uint8)) for a in [photo, skeleton, *views]]
    thumb = Image.new("RGB", (512, 384), (24, 24, 24))
    for i, im in enumerate(cells):
        thumb.paste(_fit(im, (170, 183)), ((i % 3) * 171, (i // 3) * 183))
    ImageDraw.Draw(thumb).text((6, 369), "photo_to_pose   (photo, extracted, fitted pose x 4 views)",
                               fill=(235, 235, 235))
    thumb.save(out_path, "JPEG", quality=88, optimize=True)
    return out_path


def make_thumbnail(wf: Workflow, out_path: Path, workdir: Path) -> Path:
    import numpy as np
    from PIL import Image, ImageDraw

    if wf.name == "photo_to_pose":
        return photo_thumbnail(wf, out_path, workdir)

    from pose_factory import imageio
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage, batch_prefix

    storage = LocalStorage(workdir)
    if any(n.class_type == "PoseFactoryRequestPoseBatch" for n in wf.nodes):
        manifest, _ = render_batch(thumbnail_spec(wf, storage=storage), storage, project="thumbs")
    else:
        manifest = mesh_thumbnail_batch(wf, storage)
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
    draw.text((6, 384 - label_h + 3), f"{', '.join(cols)}", fill=(235, 235, 235))
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
                print(f"wrote {make_thumbnail(wf, Path(args.out) / f'{wf.title}.jpg', Path(tmp))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
