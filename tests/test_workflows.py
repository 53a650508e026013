"""The example workflows (example_workflows/, DESIGN.md §2 and §5): every UI-format template and its
API-format copy checked against the /object_info a real ComfyUI served (tests/fixtures/object_info.json)
and against our live node classes; the generator (scripts/make_workflows.py) reproduces them.
No ComfyUI needed."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from pose_factory import example_inputs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_workflows"
API = EXAMPLES / "api"
# POSE_FACTORY_OBJECT_INFO: check against another capture (e.g. a fresh one in /tmp).
OBJECT_INFO = Path(os.environ.get("POSE_FACTORY_OBJECT_INFO") or ROOT / "tests" / "fixtures" / "object_info.json")
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
EXPECTED = ["character_sheet_4_views", "core_image_to_3d_mesh_passes", "mesh_from_mannequin_views",
            "motion_walk_preview", "motion_walk_vace_wan", "no_model_preview", "photo_to_pose",
            "pose_batch_multi_controlnet_sdxl", "pose_batch_openpose_sdxl", "posing_in_3d",
            "two_people_controlnet_sdxl", "two_people_preview", "custom_rig_preview"]
# The front end (1.49) shows a custom node pack's template by its file name (title, and description
# with "-"/"_" as spaces): the UI templates are named for people, the API copies for scripts.
TITLES = {
    "character_sheet_4_views": "Character sheet - 4 views",
    "no_model_preview": "Pose preview - no models",
    "pose_batch_multi_controlnet_sdxl": "Depth, normal, pose to SDXL",
    "pose_batch_openpose_sdxl": "OpenPose to SDXL - 4 poses",
    "mesh_from_mannequin_views": "Mesh from views - no models",
    "core_image_to_3d_mesh_passes": "Image to 3D - mesh passes",
    "motion_walk_preview": "Walk cycle - no models",
    "motion_walk_vace_wan": "Walk video - Wan VACE",
    "photo_to_pose": "Photo to pose - no models",
    "posing_in_3d": "Posing in 3D - no models",
    "two_people_controlnet_sdxl": "Two people - OpenPose and depth to SDXL",
    "two_people_preview": "Two people - no models",
    "custom_rig_preview": "Custom rig - no models",
}
FRONTEND_ONLY = {"MarkdownNote", "Note"}  # drawn by the front end, never sent to /prompt
# What the front end's Missing Models dialog offers to download (its isModelDownloadable, 1.49.6):
# a URL on one of these hosts naming a file with one of these suffixes.
DOWNLOAD_HOSTS = ("https://civitai.com/", "https://civitai.red/", "https://huggingface.co/")
DOWNLOAD_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pth", ".pt")
MODEL_FOLDERS = {"ckpt_name": "checkpoints", "control_net_name": "controlnet", "unet_name": "diffusion_models",
                 "clip_name": "text_encoders", "vae_name": "vae"}
# Model dropdowns: their lists are empty on a ComfyUI without models (as where the fixture came from).
MODEL_INPUTS = {("CheckpointLoaderSimple", "ckpt_name"), ("ControlNetLoader", "control_net_name"),
                ("ImageOnlyCheckpointLoader", "ckpt_name"), ("UNETLoader", "unet_name"),
                ("CLIPLoader", "clip_name"), ("VAELoader", "vae_name")}
MODEL_SUFFIXES = (".safetensors",)
# Our dropdowns of files in ComfyUI's input folder (empty without ComfyUI): a template names a file the
# pack itself puts there (pose_factory/example_inputs.py), which the fixture's capture listed.
INPUT_FOLDER_COMBOS = {("PoseFactoryCustomRig", "rig_file"), ("PoseFactoryMotionClip", "clip")}


def load_generator():
    spec = importlib.util.spec_from_file_location("make_workflows", ROOT / "scripts" / "make_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def info():
    return json.loads(OBJECT_INFO.read_text(encoding="utf-8"))


def templates():
    return sorted(p.stem for p in EXAMPLES.glob("*.json"))


def ui_path(name):
    return EXAMPLES / f"{TITLES[name]}.json"


def read(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- helpers over /object_info -------------------------------------------------------------------

def node_def(info, class_type):
    assert class_type in info, f"unknown node class {class_type} (not in {OBJECT_INFO.name})"
    return info[class_type]


def ordered_inputs(d):
    """[(name, spec, required)] in input_order (hidden inputs are not part of a workflow)."""
    order = d.get("input_order") or {k: list(v) for k, v in d["input"].items() if k != "hidden"}
    return [(n, d["input"][sec][n], sec == "required") for sec in ("required", "optional") for n in order.get(sec, [])]


def is_widget(spec):
    return isinstance(spec[0], list) or spec[0] in WIDGET_TYPES


def opts(spec):
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def combo_options(spec):
    return spec[0] if isinstance(spec[0], list) else opts(spec).get("options", [])


def validated_input(class_type, name):
    """Our node's VALIDATE_INPUTS when it names the input (execution.py's validate_inputs then skips
    the COMBO list check, e.g. a project made after the page loaded), else None."""
    import inspect

    import nodes as pack_nodes

    cls = pack_nodes.NODE_CLASS_MAPPINGS.get(class_type)
    validate = getattr(cls, "VALIDATE_INPUTS", None)
    if validate is None or name not in inspect.signature(validate).parameters:
        return None
    return validate


def check_widget(where, class_type, name, spec, value):
    t = "COMBO" if isinstance(spec[0], list) else spec[0]
    o = opts(spec)
    if t == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {name}={value!r} is not an INT"
    elif t == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {name}={value!r} not FLOAT"
    elif t == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {name}={value!r} is not a BOOLEAN"
    elif t == "STRING":
        assert isinstance(value, str), f"{where}: {name}={value!r} is not a STRING"
    elif t == "COMBO":
        options = combo_options(spec)
        validate = validated_input(class_type, name)
        if validate is not None:  # ComfyUI skips the list check of an input VALIDATE_INPUTS names: it decides
            assert isinstance(value, str) and validate(**{name: value}) is True, f"{where}: {name}={value!r}"
        elif (class_type, name) in MODEL_INPUTS and value not in options:  # a model file (VAELoader lists one built-in)
            assert isinstance(value, str) and value.endswith(MODEL_SUFFIXES), f"{where}: {name}={value!r}"
        else:
            assert value in options, f"{where}: {name}={value!r} is not one of {options}"
    if t in ("INT", "FLOAT"):
        if "min" in o:
            assert value >= o["min"], f"{where}: {name}={value} below min {o['min']}"
        if "max" in o:
            assert value <= o["max"], f"{where}: {name}={value} above max {o['max']}"
    if t == "INT" and o.get("step", 1) > 1:
        assert (value - o.get("min", 0)) % o["step"] == 0 or value % o["step"] == 0, \
            f"{where}: {name}={value} is not on a step of {o['step']}"


def has_control_after_generate(name, spec):
    return spec[0] == "INT" and (bool(opts(spec).get("control_after_generate")) or name in ("seed", "noise_seed"))


def types_match(out_type, in_type):
    """As ComfyUI links them: equal, '*', or one of an input's comma-separated types (Preview 3D's
    model_file takes "STRING,FILE_3D_GLB,…")."""
    return out_type == in_type or "*" in (out_type, in_type) or out_type in in_type.split(",")


# -- the folder ----------------------------------------------------------------------------------

def test_the_folder_holds_the_templates_with_thumbnails_and_api_copies():
    assert templates() == sorted(TITLES.values())
    top = sorted(p.name for p in EXAMPLES.iterdir())
    assert top == sorted(["api", "input"] + [f"{t}.json" for t in TITLES.values()] + [f"{t}.jpg" for t in TITLES.values()]), top
    assert sorted(p.name for p in API.iterdir()) == sorted(f"{n}.json" for n in EXPECTED)
    for name in EXPECTED:  # every top-level .json is listed as a template, so each must be UI format
        data = read(ui_path(name))
        assert isinstance(data.get("nodes"), list) and isinstance(data.get("links"), list), name


@pytest.mark.parametrize("name", EXPECTED)
def test_thumbnail_is_a_small_jpeg(name):
    from PIL import Image

    path = EXAMPLES / f"{TITLES[name]}.jpg"
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert 256 <= im.width <= 1024 and 192 <= im.height <= 1024, im.size
        extrema = im.convert("L").getextrema()
        assert extrema[1] - extrema[0] > 100, "thumbnail looks blank"
    assert path.stat().st_size < 200_000


# -- the UI format -------------------------------------------------------------------------------

def ui_to_api(info, wf):
    """What ComfyUI's frontend sends to /prompt for a UI-format workflow (widgets_values mapped back
    to the widget inputs in input_order, links to [node id, output index])."""
    links = {l[0]: l for l in wf["links"]}
    out = {}
    for node in wf["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        d = node_def(info, node["type"])
        values = list(node.get("widgets_values") or [])
        inputs = {}
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        for name, spec, _ in ordered_inputs(d):
            if name in linked:
                link = links[linked[name]]
                inputs[name] = [str(link[1]), link[2]]
                if is_widget(spec):  # a widget turned into a socket still holds its slot in widgets_values
                    values.pop(0)
                    if has_control_after_generate(name, spec):
                        values.pop(0)
            elif is_widget(spec):
                inputs[name] = values.pop(0)
                if has_control_after_generate(name, spec):
                    values.pop(0)
        assert values == [], f"{node['type']} #{node['id']}: widgets_values has extra values {values}"
        out[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return out


@pytest.mark.parametrize("name", EXPECTED)
def test_ui_template_is_valid_against_object_info(info, name):
    wf = read(ui_path(name))
    assert wf["version"] == 0.4
    for key in ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra"):
        assert key in wf, key
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert len(nodes) == len(wf["nodes"]), "duplicate node ids"
    assert wf["last_node_id"] >= max(nodes)
    assert wf["last_link_id"] >= max((l[0] for l in wf["links"]), default=0)
    for node in wf["nodes"]:
        where = f"{name}: {node['type']} #{node['id']}"
        if node["type"] in FRONTEND_ONLY:
            assert node["inputs"] == node["outputs"] == [], where
            assert [type(v) for v in node["widgets_values"]] == [str], where
            continue
        d = node_def(info, node["type"])
        for key in ("pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties", "widgets_values"):
            assert key in node, f"{where}: no {key}"
        assert node["properties"]["Node name for S&R"] == node["type"]
        assert node["mode"] == 0
        specs = {n: (s, req) for n, s, req in ordered_inputs(d)}
        socket_names = [i["name"] for i in node["inputs"]]
        assert len(set(socket_names)) == len(socket_names), f"{where}: duplicate inputs"
        for i in node["inputs"]:
            assert i["name"] in specs, f"{where}: unknown input {i['name']}"
            spec, _ = specs[i["name"]]
            if not is_widget(spec):
                assert i["type"] == spec[0], f"{where}: input {i['name']} is {spec[0]}, not {i['type']}"
        for n, (spec, req) in specs.items():
            if req and not is_widget(spec):
                linked = [i for i in node["inputs"] if i["name"] == n and i.get("link") is not None]
                assert linked, f"{where}: required input {n} is not linked"
        # widgets_values: one per widget input, in input_order, plus control_after_generate after a seed
        values = list(node["widgets_values"])
        for n, (spec, _) in specs.items():
            if not is_widget(spec):
                continue
            assert values, f"{where}: widgets_values too short (no value for {n})"
            check_widget(where, node["type"], n, spec, values.pop(0))
            if has_control_after_generate(n, spec):
                assert values and values.pop(0) in ("fixed", "increment", "decrement", "randomize"), where
        assert values == [], f"{where}: widgets_values too long: {values}"
        assert [o["type"] for o in node["outputs"]] == d["output"], where
        assert [o["name"] for o in node["outputs"]] == (d.get("output_name") or d["output"]), where
        assert [o.get("slot_index", k) for k, o in enumerate(node["outputs"])] == list(range(len(d["output"])))
    # links: [id, from_node, from_slot, to_node, to_slot, type], both ends agree with the nodes
    for link_id, src, src_slot, dst, dst_slot, ltype in wf["links"]:
        assert src in nodes and dst in nodes, f"{name}: link {link_id} to a missing node"
        out = nodes[src]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        assert link_id in (out["links"] or []), f"{name}: output does not list link {link_id}"
        assert inp["link"] == link_id, f"{name}: input does not hold link {link_id}"
        assert ltype == out["type"] and types_match(out["type"], inp["type"]), f"{name}: link {link_id} types"
        assert nodes[src]["order"] < nodes[dst]["order"], f"{name}: link {link_id} against the execution order"
    all_in = {i["link"] for n in wf["nodes"] for i in n["inputs"] if i.get("link") is not None}
    all_out = {l for n in wf["nodes"] for o in n["outputs"] for l in (o["links"] or [])}
    assert all_in == all_out == {l[0] for l in wf["links"]}, f"{name}: dangling link ids"
    assert sorted(n["order"] for n in wf["nodes"]) == list(range(len(nodes)))


# -- the API format ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXPECTED)
def test_api_copy_is_valid_against_object_info(info, name):
    prompt = read(API / f"{name}.json")
    assert prompt and all(isinstance(k, str) and k.isdigit() for k in prompt)
    for nid, node in prompt.items():
        where = f"{name} (api): {node.get('class_type')} #{nid}"
        d = node_def(info, node["class_type"])
        specs = {n: (s, req) for n, s, req in ordered_inputs(d)}
        for n in node["inputs"]:
            assert n in specs, f"{where}: unknown input {n}"
        for n, (spec, req) in specs.items():
            if req:
                assert n in node["inputs"], f"{where}: required input {n} missing"
            if n not in node["inputs"]:
                continue
            v = node["inputs"][n]
            if isinstance(v, list):
                assert len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int), f"{where}: {n}={v}"
                assert v[0] in prompt, f"{where}: {n} links to missing node {v[0]}"
                src = node_def(info, prompt[v[0]]["class_type"])
                assert 0 <= v[1] < len(src["output"]), f"{where}: {n} links to missing output {v[1]}"
                expected = "COMBO" if isinstance(spec[0], list) else spec[0]
                assert types_match(src["output"][v[1]], expected), \
                    f"{where}: {n} wants {expected}, gets {src['output'][v[1]]}"
            else:
                assert is_widget(spec), f"{where}: socket {n} holds a literal {v!r}"
                check_widget(where, node["class_type"], n, spec, v)


@pytest.mark.parametrize("name", EXPECTED)
def test_ui_and_api_copies_describe_the_same_graph(info, name):
    ui = ui_to_api(info, read(ui_path(name)))
    api = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in read(API / f"{name}.json").items()}
    assert ui == api


# -- our nodes -----------------------------------------------------------------------------------

def test_our_nodes_in_the_workflows_match_the_live_classes(info):
    import nodes as pack_nodes

    used = set()
    for name in EXPECTED:
        used |= {n["class_type"] for n in read(API / f"{name}.json").values()}
        for node in read(API / f"{name}.json").values():
            if not node["class_type"].startswith("PoseFactory"):
                continue
            cls = pack_nodes.NODE_CLASS_MAPPINGS[node["class_type"]]
            live = cls.INPUT_TYPES()
            live_specs = {n: s for sec in ("required", "optional") for n, s in live.get(sec, {}).items()}
            for n, v in node["inputs"].items():
                assert n in live_specs, f"{name}: {node['class_type']} has no input {n} any more"
                spec = live_specs[n]
                if (node["class_type"], n) in INPUT_FOLDER_COMBOS:  # lists ComfyUI's input folder: none here
                    assert v in example_inputs.FILES, f"{name}: {node['class_type']}.{n}={v!r} is no file the pack puts there"
                elif not isinstance(v, list) and isinstance(spec[0], (list, tuple)) \
                        and validated_input(node["class_type"], n) is None:
                    assert v in spec[0], f"{name}: {node['class_type']}.{n}={v!r} not in {list(spec[0])}"
            for n in live.get("required", {}):
                assert n in node["inputs"], f"{name}: {node['class_type']} lacks required {n}"
    ours = sorted(c for c in used if c.startswith("PoseFactory"))
    assert ours, "no PoseFactory node in the workflows"
    for class_type in ours:  # the fixture was captured from these classes
        cls = pack_nodes.NODE_CLASS_MAPPINGS[class_type]
        d = node_def(info, class_type)
        live = cls.INPUT_TYPES()
        for sec in ("required", "optional"):
            assert list(live.get(sec, {})) == d.get("input_order", {}).get(sec, []), f"{class_type} {sec} inputs"
            for n, spec in live.get(sec, {}).items():
                fixture_type = d["input"][sec][n][0]
                if isinstance(spec[0], (list, tuple)):
                    assert isinstance(fixture_type, list) or fixture_type == "COMBO", f"{class_type}.{n}"
                else:
                    assert fixture_type == spec[0], f"{class_type}.{n}: {spec[0]} vs fixture {fixture_type}"
        assert list(cls.RETURN_TYPES) == d["output"], class_type


def test_sdxl_workflows_name_the_documented_model_files():
    gen = load_generator()
    names = {}
    for name in EXPECTED:
        for node in read(API / f"{name}.json").values():
            for n in ("ckpt_name", "control_net_name", "unet_name", "clip_name", "vae_name"):
                if n in node["inputs"]:
                    names.setdefault(name, set()).add(node["inputs"][n])
    assert "no_model_preview" not in names and "motion_walk_preview" not in names  # run with no model at all
    assert names["motion_walk_vace_wan"] == {gen.WAN_VACE, gen.WAN_TEXT, gen.WAN_VAE}
    assert names["pose_batch_openpose_sdxl"] == {gen.SDXL_CKPT, gen.OPENPOSE_CN}
    assert names["pose_batch_multi_controlnet_sdxl"] == {gen.SDXL_CKPT, gen.OPENPOSE_CN, gen.UNION_CN}
    assert names["character_sheet_4_views"] == {gen.SDXL_CKPT, gen.OPENPOSE_CN}


# -- what a new user sees: models to download, a note, previews with room -------------------------

def model_widgets(wf):
    """[(node, widget name, file name)] for every model file a node's widget names."""
    out = []
    for node in wf["nodes"]:
        if node["type"] in ("CheckpointLoaderSimple", "ImageOnlyCheckpointLoader"):
            out.append((node, "ckpt_name", node["widgets_values"][0]))
        elif node["type"] == "ControlNetLoader":
            out.append((node, "control_net_name", node["widgets_values"][0]))
        elif node["type"] in ("UNETLoader", "CLIPLoader", "VAELoader"):
            widget = {"UNETLoader": "unet_name", "CLIPLoader": "clip_name", "VAELoader": "vae_name"}[node["type"]]
            out.append((node, widget, node["widgets_values"][0]))
    return out


@pytest.mark.parametrize("name", EXPECTED)
def test_every_model_a_template_names_has_a_download_url_and_folder(name):
    """The "Missing Models" dialog offers a download for a model whose node (properties.models) or
    workflow (models) gives its url and directory; without them it shows only the file name."""
    gen = load_generator()
    wf = read(ui_path(name))
    used = model_widgets(wf)
    if name in ("no_model_preview", "mesh_from_mannequin_views", "motion_walk_preview", "photo_to_pose",
                "posing_in_3d", "two_people_preview", "custom_rig_preview"):
        assert used == [] and "models" not in wf
        return
    assert used, f"{name}: names no model"
    listed = {m["name"]: m for m in wf["models"]}
    for node, widget, file_name in used:
        where = f"{name}: {node['type']} #{node['id']} {file_name}"
        on_node = [m for m in node["properties"].get("models", []) if m["name"] == file_name]
        assert len(on_node) == 1, f"{where}: no properties.models entry"
        for m in (on_node[0], listed.get(file_name)):
            assert m is not None, f"{where}: not in the workflow's models list"
            assert m["directory"] == MODEL_FOLDERS[widget], where
            assert m["url"].startswith(DOWNLOAD_HOSTS) and file_name.endswith(DOWNLOAD_SUFFIXES), where
            if file_name in gen.RENAME_AFTER_DOWNLOAD:  # the note says to save it under the workflow's name
                continue
            assert m["url"].split("?")[0].rsplit("/", 1)[1] == file_name, \
                f"{where}: the host serves {m['url']} under another name than the workflow asks for"
    assert set(listed) == {f for _, _, f in used}, f"{name}: models lists files the graph does not name"


@pytest.mark.parametrize("name", EXPECTED)
def test_every_template_has_a_note_saying_what_it_makes_and_needs(name):
    wf = read(ui_path(name))
    notes = [n for n in wf["nodes"] if n["type"] in FRONTEND_ONLY]
    assert len(notes) == 1, f"{name}: {len(notes)} notes"
    text = notes[0]["widgets_values"][0]
    assert TITLES[name] in text and "**Makes:**" in text and "**Needs:**" in text, text
    for m in wf.get("models", []):
        assert f"[{m['name']}]({m['url']})" in text and f"models/{m['directory']}/" in text, f"{name}: {m['name']}"
    if name in ("no_model_preview", "mesh_from_mannequin_views", "motion_walk_preview", "photo_to_pose",
                "posing_in_3d", "two_people_preview", "custom_rig_preview"):
        assert "no model files" in text
    for m in wf.get("models", []):
        if m["name"] in load_generator().RENAME_AFTER_DOWNLOAD:
            assert f"save it as `{m['name']}`" in text, f"{name}: {m['name']} needs a rename after download"


def boxes_overlap(a, b, title_h=30):
    """LiteGraph node boxes: pos is the body's top-left, the title bar sits title_h above it."""
    (ax, ay), (aw, ah) = a["pos"], a["size"]
    (bx, by), (bw, bh) = b["pos"], b["size"]
    return ax < bx + bw and bx < ax + aw and ay - title_h < by + bh and by - title_h < ay + ah


@pytest.mark.parametrize("name", EXPECTED)
def test_no_two_nodes_overlap_and_loaders_leave_room_for_their_preview(name):
    gen = load_generator()
    wf = read(ui_path(name))
    for i, a in enumerate(wf["nodes"]):
        for b in wf["nodes"][i + 1:]:
            assert not boxes_overlap(a, b), f"{name}: #{a['id']} {a['type']} overlaps #{b['id']} {b['type']}"
    loaders = [n for n in wf["nodes"] if n["type"] in ("PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader")]
    assert loaders
    for node in loaders:  # 28 px per widget row: its widgets, the refresh button, then the preview
        rows = len(node["widgets_values"]) + gen.LOADER_EXTRA_WIDGETS
        assert node["size"][1] >= 16 + 24 * len(node["outputs"]) + 28 * rows + gen.LOADER_PREVIEW_HEIGHT, node


# -- the generator -------------------------------------------------------------------------------

def test_generator_reproduces_the_committed_files(tmp_path, info):
    gen = load_generator()
    written = gen.write_all(tmp_path, info)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(
        [f"{t}.json" for t in TITLES.values()] + [f"api/{n}.json" for n in EXPECTED])
    for p in written:
        rel = p.relative_to(tmp_path)
        assert p.read_bytes() == (EXAMPLES / rel).read_bytes(), \
            f"{rel} differs from the generator's output: run scripts/make_workflows.py"
