"""The ComfyUI nodes: loaded the way ComfyUI loads the pack (no ComfyUI needed), their contract,
and their outputs on real batches rendered with bpy."""
import importlib.util
import inspect
import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pose_factory import settings as settings_mod
from pose_factory.storage import index
from pose_factory.render import openpose
from pose_factory.errors import SpecError
from pose_factory.imageio import read_png
from pose_factory.render.mannequin import PART_LABEL
from pose_factory.render import render_batch
from pose_factory.storage import LocalStorage

ROOT = Path(__file__).resolve().parent.parent
W, H = 96, 64
NODE_IDS = ["PoseFactoryMannequin", "PoseFactoryPosePreset", "PoseFactoryPoseFromJSON", "PoseFactoryPoseSequence",
            "PoseFactoryPoseList", "PoseFactoryMotionClip",
            "PoseFactoryCameraOrbit", "PoseFactoryCameraList", "PoseFactoryCameraFromLoad3D",
            "PoseFactoryRequestPoseBatch", "PoseFactoryLoadPoseFromR2",
            "PoseFactoryDepthNormalLoader", "PoseFactoryPoseKeypointsToImage", "PoseFactoryExtractPose",
            "PoseFactoryPoseFromPhoto", "PoseFactoryPoseFromKeypoints", "PoseFactoryPostureAnalysis",
            "PoseFactoryMultiViewPrompts", "PoseFactoryRequestMeshFromImages", "PoseFactoryRenderMeshPasses",
            "PoseFactoryPoseProp", "PoseFactoryCustomRig", "PoseFactoryScene"]
KNOWN_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "IMAGE", "MASK", "POSE_KEYPOINT", "POSE_FACTORY_SUBJECT",
               "POSE_FACTORY_POSES", "POSE_FACTORY_CAMERAS", "POSE_FACTORY_BATCH", "POSE_FACTORY_MESH",
               "POSE_FACTORY_PROPS", "MESH", "LOAD3D_CAMERA"}  # MESH: ComfyUI core's (comfy_api.latest Types.MESH)


def load_pack_like_comfyui():
    """ComfyUI's load_custom_node: the pack folder's __init__.py as a module named after the folder."""
    name = "pose_factory_pack_under_test"
    spec = importlib.util.spec_from_file_location(name, str(ROOT / "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack():
    return load_pack_like_comfyui()


@pytest.fixture(scope="module")
def nodes(pack):
    return {k: v for k, v in pack.NODE_CLASS_MAPPINGS.items()}


def test_pack_registers_every_node_with_a_display_name(pack):
    assert sorted(pack.NODE_CLASS_MAPPINGS) == sorted(NODE_IDS)
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_IDS)
    # issue 21.11: no " (3D Pose Factory)" suffix (ComfyUI shows the pack's badge; the suffix cut
    # every name short in the node library); the class ids, which workflows name, stay
    assert not [n for n in pack.NODE_DISPLAY_NAME_MAPPINGS.values() if "Pose Factory" in n]
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["PoseFactoryRequestPoseBatch"] == "Request Pose Batch"
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["PoseFactoryDepthNormalLoader"] == "Load Depth / Normal / Seg"
    assert pack.WEB_DIRECTORY == "./web/js"


def test_importing_the_pack_pulls_in_neither_torch_nor_bpy():
    import subprocess

    code = ("import importlib.util, sys\n"
            f"s = importlib.util.spec_from_file_location('pk', {str(ROOT / '__init__.py')!r})\n"
            "m = importlib.util.module_from_spec(s); sys.modules['pk'] = m; s.loader.exec_module(m)\n"
            "print(len(m.NODE_CLASS_MAPPINGS), 'torch' in sys.modules, 'bpy' in sys.modules, 'comfy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(NODE_IDS)), "False", "False", "False"]


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_contract(nodes, node_id):
    cls = nodes[node_id]
    for attr in ("INPUT_TYPES", "RETURN_TYPES", "RETURN_NAMES", "FUNCTION", "CATEGORY", "DESCRIPTION"):
        assert hasattr(cls, attr), attr
    assert cls.CATEGORY.startswith("3D Pose Factory/") and cls.CATEGORY.split("/")[1] in (
        "spec", "batch", "loaders", "keypoints", "extract", "mesh")
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 20
    assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
    assert all(t in KNOWN_TYPES for t in cls.RETURN_TYPES)
    types_ = cls.INPUT_TYPES()
    assert set(types_) <= {"required", "optional", "hidden"}
    names = []
    for section in ("required", "optional"):
        for name, spec in types_.get(section, {}).items():
            names.append(name)
            kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
            if isinstance(kind, list):  # COMBO
                assert kind and all(isinstance(v, str) for v in kind), name
                assert opts.get("default", kind[0]) in kind, name
                continue
            assert kind in KNOWN_TYPES, (name, kind)
            if kind in ("INT", "FLOAT"):
                assert opts["min"] <= opts["default"] <= opts["max"], name
                if kind == "INT":
                    assert all(isinstance(opts[k], int) for k in ("min", "max", "default"))
                    if opts.get("step", 1) > 1:
                        assert opts["default"] % opts["step"] == 0
            elif kind == "BOOLEAN":
                assert isinstance(opts["default"], bool)
            elif kind == "STRING":
                assert isinstance(opts.get("default", ""), str)
    fn = getattr(cls, cls.FUNCTION)
    params = inspect.signature(fn).parameters
    required = [n for n in types_["required"]]
    for n in required:
        assert n in params, (node_id, n)
    for n in list(types_.get("optional", {})) + list(types_.get("hidden", {})):
        assert n in params or any(p.kind == p.VAR_KEYWORD for p in params.values()), (node_id, n)
    for n, p in params.items():
        if n == "self" or p.kind == p.VAR_KEYWORD:
            continue
        assert n in names or n in types_.get("hidden", {}), (node_id, n)
    if hasattr(cls, "VALIDATE_INPUTS"):  # ComfyUI passes it the named widgets only; linked ones are absent
        for n, p in inspect.signature(cls.VALIDATE_INPUTS).parameters.items():
            assert n in names and p.default is None, (node_id, n)
        assert cls.VALIDATE_INPUTS() is True  # everything linked: nothing to check at queue time
    # no secret ever appears as a widget
    assert not [n for n in names if re.search(r"(api|access)_?key|secret|token|password|endpoint", n.lower())]


def test_request_has_no_is_changed_and_loaders_validate_batch_ids(nodes):
    assert not hasattr(nodes["PoseFactoryRequestPoseBatch"], "IS_CHANGED")
    req = nodes["PoseFactoryRequestPoseBatch"].INPUT_TYPES()
    assert req["hidden"] == {"unique_id": "UNIQUE_ID"}
    assert req["required"]["backend"][0] == ["local", "runpod"]
    for nid in ("PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader"):
        cls = nodes[nid]
        assert "batch_id" in inspect.signature(cls.VALIDATE_INPUTS).parameters
        assert cls.VALIDATE_INPUTS(batch_id="0123456789abcdef") is True
        assert cls.VALIDATE_INPUTS(batch_id="") is True  # a batch input linked
        assert "16 hexadecimal" in cls.VALIDATE_INPUTS(batch_id="nope")
        assert "project" in cls.VALIDATE_INPUTS(batch_id="0123456789abcdef", project="Bad Name")
        optional = cls.INPUT_TYPES()["optional"]
        assert optional.pop("batch") == ("POSE_FACTORY_BATCH",)
        assert optional.pop("person")[0] == ["all", *map(str, range(8))]  # issue 22.3
        if nid == "PoseFactoryLoadPoseFromR2":  # issue 23.2: last, optional, hides nothing by default
            assert list(cls.INPUT_TYPES()["optional"])[-1] == "hide"
            assert optional.pop("hide") == ("STRING", optional_hide := cls.INPUT_TYPES()["optional"]["hide"][1])
            assert optional_hide["default"] == ""
            assert "unknown joint or group 'tail'" in cls.VALIDATE_INPUTS(batch_id="0123456789abcdef", hide="tail")
            assert cls.VALIDATE_INPUTS(batch_id="0123456789abcdef", hide="left_hand, 1:nose") is True
            # issue 23.1
            feet = optional.pop("feet")
            assert feet[0] == "BOOLEAN" and feet[1]["default"] is False
        assert optional == ({} if nid == "PoseFactoryDepthNormalLoader" else
                            {"occluded": (["as rendered", "hide", "show", "depth"], optional["occluded"][1])})


@pytest.mark.parametrize("node_id", ["PoseFactoryRequestPoseBatch", "PoseFactoryPoseKeypointsToImage"])
def test_drawing_nodes_take_occluded_optional_default_hide(nodes, node_id):
    # optional, so workflows saved before it existed still load and queue
    kind, opts = nodes[node_id].INPUT_TYPES()["optional"]["occluded"]
    assert kind == list(openpose.OCCLUDED_MODES) == ["hide", "show", "depth"] and opts["default"] == "hide"
    cls = nodes[node_id]
    assert inspect.signature(getattr(cls, cls.FUNCTION)).parameters["occluded"].default == "hide"


def test_the_loaders_occluded_defaults_to_what_the_request_asked_for(nodes):
    """Issue 21.9: a loader left at its default drew hide over a batch requested with depth; its
    default is now "as rendered" (the manifest's spec), the explicit choices still override."""
    cls = nodes["PoseFactoryLoadPoseFromR2"]
    kind, opts = cls.INPUT_TYPES()["optional"]["occluded"]
    assert kind == ["as rendered", "hide", "show", "depth"] and opts["default"] == "as rendered"
    assert inspect.signature(cls.load).parameters["occluded"].default == "as rendered"


# --- one project control per node (issue 21.2) ------------------------------------------------------
def write_index(cache_root, projects: dict):
    """The local index as this machine writes it (pose_factory.storage.index's documented format)."""
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    (Path(cache_root) / "index.json").write_text(json.dumps({"version": 1, "projects": projects}))


POSE_PASSES = ["depth", "depth16", "keypoints", "mask", "normal", "normal_directx", "normal_opengl", "openpose",
               "parts", "seg", "shaded"]
MESH_PASSES = ["depth", "depth16", "mask", "normal", "normal_directx", "normal_opengl", "parts", "seg", "shaded"]


@pytest.fixture
def two_projects(tmp_path, monkeypatch):
    """A config whose default project is "demo", and an index holding a pose batch in "people"
    (older) and a mesh batch (Render Mesh Passes: no keypoints) in "things" (newer)."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "c")},
                               "project": "demo"}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    write_index(tmp_path / "c", {
        "people": {"1111111111111111": {"created_at": "2026-12-01T10:00:00+00:00", "passes": POSE_PASSES}},
        "things": {"2222222222222222": {"created_at": "2026-12-02T10:00:00+00:00", "passes": MESH_PASSES}},
        "empty": {}})
    return tmp_path / "c"


def visible_project_controls(cls) -> list[str]:
    inputs = {**cls.INPUT_TYPES().get("required", {}), **cls.INPUT_TYPES().get("optional", {})}
    return [n for n, spec in inputs.items() if "project" in n and not (len(spec) > 1 and spec[1].get("hidden"))]


def test_every_node_shows_one_project_control_with_the_project_it_uses(nodes, two_projects):
    """A node that stores a batch has one `project` dropdown: the known projects and the configured
    default (which the node uses when left alone, even before it has a batch), any other name
    accepted at queue time (ComfyUI skips the list check of an input VALIDATE_INPUTS names), so an
    old workflow's text value, an API prompt's name or a project made after the page loaded run."""
    makers = [n for n, cls in nodes.items() if "project" in cls.INPUT_TYPES().get("required", {})
              and n not in ("PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader")]
    assert sorted(makers) == ["PoseFactoryRenderMeshPasses", "PoseFactoryRequestMeshFromImages",
                              "PoseFactoryRequestPoseBatch"]
    for node_id, cls in nodes.items():
        assert len(visible_project_controls(cls)) <= 1, node_id
    for node_id in makers:
        cls = nodes[node_id]
        kind, opts = cls.INPUT_TYPES()["required"]["project"]
        assert kind == ["demo", "empty", "people", "things"] and opts["default"] == "demo", node_id
        assert "project" in inspect.signature(cls.VALIDATE_INPUTS).parameters, node_id
        assert cls.VALIDATE_INPUTS(project="examples") is True  # an old workflow's text, not in the list
        assert cls.VALIDATE_INPUTS(project="My Poses") is True  # made a name when it runs: my-poses
        assert cls.VALIDATE_INPUTS(project=None) is True  # linked
        assert "allowed: 1 to 64" in cls.VALIDATE_INPUTS(project="!!!")


def test_loaders_show_the_project_in_the_batch_entry_only(nodes, two_projects):
    for node_id in ("PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader"):
        required = nodes[node_id].INPUT_TYPES()["required"]
        assert required["project"][1]["hidden"] is True  # kept for old workflows' and API prompts' bare ids
        assert visible_project_controls(nodes[node_id]) == []
        assert all("/" in b for b in required["batch_id"][0][:-1]) and required["batch_id"][0][-1] == "current batch"


def test_loaders_list_every_projects_batches_they_can_load(nodes, two_projects):
    """Issue 21.3: Load Pose Batch offered a mesh batch, which then failed ("no keypoints pass");
    each loader lists the batches of every project it can load, newest first."""
    pose = nodes["PoseFactoryLoadPoseFromR2"].INPUT_TYPES()["required"]["batch_id"]
    maps = nodes["PoseFactoryDepthNormalLoader"].INPUT_TYPES()["required"]["batch_id"]
    assert pose[0] == ["people/1111111111111111", "current batch"] and pose[1]["default"] == pose[0][0]
    assert maps[0] == ["things/2222222222222222", "people/1111111111111111", "current batch"]
    write_index(two_projects, {"things": {"2222222222222222": {"created_at": "x", "passes": MESH_PASSES}}})
    assert nodes["PoseFactoryLoadPoseFromR2"].INPUT_TYPES()["required"]["batch_id"][0] == ["", "current batch"]


# --- spec nodes -----------------------------------------------------------------------------------
def test_spec_nodes_build_a_valid_spec(nodes):
    from nodes.batch_nodes import build_spec

    (subject,) = nodes["PoseFactoryMannequin"]().make(1.8, "slim")
    (p1,) = nodes["PoseFactoryPosePreset"]().make("waving", True, "open")
    (p2,) = nodes["PoseFactoryPosePreset"]().make("a_pose", False, "preset default")
    (p3,) = nodes["PoseFactoryPoseFromJSON"]().make('{"l_elbow": {"flex": 90}}', "standing")
    (poses,) = nodes["PoseFactoryPoseList"]().join(p1, poses_3=p3, poses_2=p2)
    assert poses == [{"preset": "waving", "mirror": True, "hands": "open"}, {"preset": "a_pose", "mirror": False},
                     {"preset": "standing", "joints": {"l_elbow": {"flex": 90}}}]
    (cams,) = nodes["PoseFactoryCameraOrbit"]().make(3, 10.0, 0.0, 50.0, False, 0.0, 0.0)
    assert cams["distance"] == "auto" and cams["views"] == 3
    (cams2,) = nodes["PoseFactoryCameraOrbit"]().make(3, 10.0, 4.0, 50.0, False, 0.0, 0.0)
    assert cams2["distance"] == 4.0
    spec = build_spec(subject, poses, cams, 128, 64, depth=False, shaded=False, project="p1")
    assert spec["render"]["passes"] == ["openpose", "keypoints", "normal", "seg"]
    assert spec["render"]["openpose"]["occluded"] == "hide"
    assert build_spec(subject, poses, cams, 128, 64, occluded="depth")["render"]["openpose"]["occluded"] == "depth"
    # issue 23.1: feet is written only when on, so a spec without it keeps its batch id
    assert "feet" not in spec["render"]["openpose"]
    assert build_spec(subject, poses, cams, 128, 64, feet=True)["render"]["openpose"]["feet"] is True
    with pytest.raises(SpecError, match=r"render\.openpose\.occluded: got 'all', allowed: one of hide, show, depth"):
        build_spec(subject, poses, cams, 128, 64, occluded="all")
    assert spec["subjects"][0]["height"] == 1.8 and len(spec["subjects"][0]["poses"]) == 3
    assert spec["project"] == "p1"


def test_spec_nodes_name_the_wrong_field(nodes):
    with pytest.raises(SpecError, match=r"^joints: l_elbow flex: got 400, allowed -5\.\.150"):
        nodes["PoseFactoryPoseFromJSON"]().make('{"l_elbow": {"flex": 400}}', "rest")
    with pytest.raises(SpecError, match=r"^joints: unknown joint 'l_elbo'"):
        nodes["PoseFactoryPoseFromJSON"]().make('{"l_elbo": {"flex": 10}}', "rest")
    with pytest.raises(SpecError, match=r"joints: not valid JSON \(line 1"):
        nodes["PoseFactoryPoseFromJSON"]().make('{"l_elbow": ', "rest")
    with pytest.raises(SpecError, match=r"^distance: got 0\.2, allowed: 0 \(auto"):
        nodes["PoseFactoryCameraOrbit"]().make(3, 10.0, 0.2, 50.0, False, 0.0, 0.0)
    (whole,) = nodes["PoseFactoryPoseFromJSON"]().make('{"preset": "waving", "mirror": true}', "rest")
    assert whole == [{"preset": "waving", "mirror": True}]


# Issue 9.3: each widget checked when the prompt is queued, in the node's words (ComfyUI shows
# "<widget> - <message>"), the same check as at run time.
QUEUE_CHECKS = [
    ("PoseFactoryPoseFromJSON", "joints", '{"l_elbow": {"flex": 400}}', "l_elbow flex: got 400, allowed -5..150"),
    ("PoseFactoryPoseFromJSON", "joints", '{"l_elbo": {"flex": 10}}', "unknown joint 'l_elbo'; did you mean 'l_elbow'"),
    ("PoseFactoryPoseFromJSON", "joints", '{"l_elbow": {"flex": ', "not valid JSON (line 1, column"),
    ("PoseFactoryPoseFromJSON", "joints", '{"preset": "wavng"}', "preset: unknown preset 'wavng'; did you mean 'waving'"),
    ("PoseFactoryPoseFromJSON", "joints", '{"offset": [0, 9, 0]}', "offset 1: got 9, allowed -5..5 (metres)"),
    ("PoseFactoryPosePreset", "preset", "wavng", "unknown preset 'wavng'; did you mean 'waving'"),
    ("PoseFactoryMannequin", "height", 3.0, "got 3.0, allowed: a number from 1.2 to 2.2 m"),
    ("PoseFactoryCameraOrbit", "distance", 0.2, "got 0.2, allowed: 0 (auto: the subject fits the frame) or 0.5 to 100"),
    ("PoseFactoryPoseSequence", "poses", "a_pose\nwavng", "line 2 preset: unknown preset 'wavng'; did you mean"),
    ("PoseFactoryPoseSequence", "poses", "a_pose mirr", "line 1: unknown option 'mirr', allowed: mirror, hands=<"),
    ("PoseFactoryPoseSequence", "poses", "# nothing", "got 0 poses, allowed: 1 to 256 lines"),
]


@pytest.mark.parametrize("node_id,widget,value,message", QUEUE_CHECKS)
def test_spec_nodes_validate_their_widgets_at_queue_time(nodes, node_id, widget, value, message):
    cls = nodes[node_id]
    got = cls.VALIDATE_INPUTS(**{widget: value})
    assert isinstance(got, str) and got.startswith(message), got
    assert "subjects[" not in got and "pose." not in got and "Traceback" not in got and "\n" not in got
    assert cls.VALIDATE_INPUTS(**{widget: None}) is True  # linked: checked when it runs


def test_spec_nodes_accept_good_widgets_at_queue_time(nodes):
    assert nodes["PoseFactoryPoseFromJSON"].VALIDATE_INPUTS(joints='{"l_elbow": {"flex": 90}}') is True
    assert nodes["PoseFactoryPoseFromJSON"].VALIDATE_INPUTS(joints="") is True  # the preset alone
    assert nodes["PoseFactoryPosePreset"].VALIDATE_INPUTS(preset="waving") is True
    assert nodes["PoseFactoryMannequin"].VALIDATE_INPUTS(height=1.2) is True
    assert nodes["PoseFactoryCameraOrbit"].VALIDATE_INPUTS(distance=0.0) is True
    assert nodes["PoseFactoryCameraOrbit"].VALIDATE_INPUTS(distance=0.5) is True
    default = nodes["PoseFactoryPoseSequence"].INPUT_TYPES()["required"]["poses"][1]["default"]
    assert nodes["PoseFactoryPoseSequence"].VALIDATE_INPUTS(poses=default) is True


def test_request_pose_batch_run_time_errors_are_in_plain_words(nodes):
    from nodes._common import plain_error

    e = SpecError("subjects[0].poses[2].joints.l_elbow.flex", "got 400, allowed -5..150")
    assert str(plain_error(e)) == "frame 2 l_elbow flex: got 400, allowed -5..150"
    assert str(plain_error(SpecError("render.width", "got 100", "a multiple of 8"))) == \
        "width: got 100, allowed: a multiple of 8"
    (subject,) = nodes["PoseFactoryMannequin"]().make(1.75, "average")
    (cams,) = nodes["PoseFactoryCameraOrbit"]().make(1, 10.0, 0.0, 50.0, False, 0.0, 0.0)
    bad = [{"preset": "a_pose"}, {"preset": "rest", "joints": {"l_elbow": {"flex": 400}}}]  # as a linked value
    with pytest.raises(SpecError, match=r"^frame 1 l_elbow flex: got 400"):
        nodes["PoseFactoryRequestPoseBatch"]().request(subject, bad, cams, 64, 64, *[True] * 4, "batch", True, True,
                                                        False, "local", "x", False)


# --- long sequences (issue 9.5) ---------------------------------------------------------------------
def test_pose_sequence_makes_one_pose_per_line(nodes):
    text = "a_pose\n\n  waving mirror hands=open  # wave back\n# a comment line\npointing hands=point mirror\n"
    (poses,) = nodes["PoseFactoryPoseSequence"]().make(text)
    assert poses == [{"preset": "a_pose"}, {"preset": "waving", "mirror": True, "hands": "open"},
                     {"preset": "pointing", "hands": "point", "mirror": True}]
    from nodes.batch_nodes import build_spec
    from pose_factory.render import poses as poses_mod

    spec = build_spec({"type": "mannequin"}, poses, {"type": "orbit", "views": 1}, 64, 64)
    want = [poses_mod.normalize_pose_entry(p, "p") for p in
            ("a_pose", {"preset": "waving", "mirror": True, "hands": "open"},
             {"preset": "pointing", "mirror": True, "hands": "point"})]
    assert spec["subjects"][0]["poses"] == want
    with pytest.raises(SpecError, match=r"^poses: line 3 hands: unknown hand shape 'fst'"):
        nodes["PoseFactoryPoseSequence"]().make("a_pose\nrest\nwaving hands=fst")


def test_pose_list_takes_more_than_eight_inputs_in_order(nodes):
    cls = nodes["PoseFactoryPoseList"]
    optional = cls.INPUT_TYPES()["optional"]
    assert list(optional) == [f"poses_{i}" for i in range(2, 65)]
    parts = {f"poses_{i}": [{"preset": "rest", "joints": {"l_elbow": {"flex": float(i)}}}] for i in range(2, 21)}
    (out,) = cls().join([{"preset": "a_pose"}], **dict(reversed(list(parts.items()))))
    assert [p.get("joints", {}).get("l_elbow", {}).get("flex") for p in out] == [None, *map(float, range(2, 21))]


# --- keypoints ------------------------------------------------------------------------------------
def test_keypoints_to_image_equals_draw_pose(nodes):
    body = [0.0] * 54
    points = {0: (40, 10), 1: (40, 20), 2: (30, 20), 3: (25, 35), 5: (50, 20), 8: (34, 45), 11: (46, 45)}
    for j, (x, y) in points.items():
        body[3 * j:3 * j + 3] = [x, y, 1.0]
    hand = [v for i in range(21) for v in (20 + i, 40 + (i % 4), 1.0)]
    frame = {"people": [{"pose_keypoints_2d": body, "hand_left_keypoints_2d": hand,
                         "face_keypoints_2d": [v for i in range(70) for v in (35 + i % 10, 5 + i // 10, 1.0)]}],
             "canvas_width": 80, "canvas_height": 64}
    node = nodes["PoseFactoryPoseKeypointsToImage"]()
    for hands, face, sticks in ((True, True, False), (False, True, False), (True, False, True)):
        (img,) = node.draw([frame, frame], hands, face, sticks)
        want = openpose.draw_pose(frame, hands=hands, face=face, sdxl_sticks=sticks)
        assert img.dtype == torch.float32 and tuple(img.shape) == (2, 64, 80, 3)
        assert np.array_equal(np.rint(img[1].numpy() * 255).astype(np.uint8), want)
    # another pack's frame has no covered points of ours: the three choices draw the same
    for mode in openpose.OCCLUDED_MODES:
        (img,) = node.draw([frame], True, True, False, occluded=mode)
        assert np.array_equal(u8(img[0]), openpose.draw_pose(frame))
    xy, vis = np.array([[20.5, 20.5]] * 18), np.zeros(18, bool)
    vis[1] = True
    xy[2] = (40.5, 40.5)
    ours = openpose.pose_keypoint_frame((xy, vis, np.ones(18, bool), np.full(18, 2.0)), None, None, None, 80, 64)
    (hide,), (show,) = node.draw([ours], True, True, False), node.draw([ours], True, True, False, occluded="show")
    assert np.array_equal(u8(show[0]), openpose.draw_pose(ours, occluded="show")) and not u8(hide[0])[40, 40].any()
    assert tuple(u8(show[0])[40, 40]) == openpose.BODY_COLORS[2]
    # issue 23.1: feet draws core's foot points; off (the default) the image is as before
    footed = dict(frame, people=[dict(frame["people"][0], foot_keypoints_2d=[60.0, 50.0, 1.0] * 6)])
    (off,), (on,) = node.draw([footed], True, True, False), node.draw([footed], True, True, False, feet=True)
    assert np.array_equal(u8(off[0]), openpose.draw_pose(frame))
    assert np.array_equal(u8(on[0]), openpose.draw_pose(footed, feet=True)) and u8(on[0])[50, 60].any()
    (single,) = node.draw(frame, True, True, False)  # one frame dict, as some packs give
    assert single.shape[0] == 1
    with pytest.raises(ValueError, match="pose_keypoints_2d"):
        bad = {"people": [{"pose_keypoints_2d": [1, 2]}], "canvas_width": 8, "canvas_height": 8}
        node.draw([bad], True, True, False)
    with pytest.raises(ValueError, match="different canvas sizes"):
        node.draw([frame, dict(frame, canvas_width=90)], True, True, False)


# --- loaders on a real batch ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory, pack):
    """A config pointing storage, cache and ledger at a temp folder (through $POSE_FACTORY_CONFIG,
    as a user's config would), and a batch rendered into that storage."""
    tmp = tmp_path_factory.mktemp("nodes")
    cfg = tmp / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp / "store"), "cache_root": str(tmp / "cache")},
                               "budget": {"ledger_path": str(tmp / "ledger.sqlite")}, "project": "demo"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("POSE_FACTORY_CONFIG", str(cfg))
    spec = {"render": {"width": W, "height": H}, "cameras": {"type": "orbit", "views": 2, "elevation": 5},
            "subjects": [{"type": "mannequin", "poses": ["a_pose", {"preset": "waving", "hands": "open"}]}]}
    manifest, _ = render_batch(spec, LocalStorage(tmp / "store"), project="demo")
    src = tmp / "store" / "projects" / "demo" / "batches" / manifest["batch_id"]
    yield {"tmp": tmp, "manifest": manifest, "bid": manifest["batch_id"], "src": src,
           "settings": settings_mod.load_settings()}
    mp.undo()


def u8(t):
    return np.rint(t.numpy() * 255).astype(np.uint8)


def load_pose(nodes, env, **kw):
    args = dict(project="demo", batch_id=env["bid"], views="all", frames="all", order="view_major", hands=True,
                face=True)
    args.update(kw)
    return nodes["PoseFactoryLoadPoseFromR2"]().load(**args)


def load_maps(nodes, env, **kw):
    args = dict(project="demo", batch_id=env["bid"], views="all", frames="all", order="view_major",
                depth_range="batch", normal_convention="controlnet", parts="hands")
    args.update(kw)
    return nodes["PoseFactoryDepthNormalLoader"]().load(**args)["result"]


@pytest.mark.blender
def test_pose_loader_tensors_order_and_keypoints(nodes, env):
    out = load_pose(nodes, env, order="frame_major", views="1,0")
    assert "ui" not in out  # no ComfyUI: no preview
    op, kp, shaded = out["result"]
    pairs = [(1, 0), (0, 0), (1, 1), (0, 1)]
    for t in (op, shaded):
        assert t.dtype == torch.float32 and tuple(t.shape) == (4, H, W, 3)
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    for i, (v, f) in enumerate(pairs):
        name = f"v{v:02d}_f{f:04d}"
        assert np.array_equal(u8(op[i]), read_png(str(env["src"] / "openpose" / f"{name}.png")))
        assert np.array_equal(u8(shaded[i]), read_png(str(env["src"] / "shaded" / f"{name}.png")))
        assert kp[i] == json.loads((env["src"] / "keypoints" / f"{name}.json").read_text())
    vm = load_pose(nodes, env, order="view_major", views="1,0")["result"][0]
    assert torch.equal(vm[1], op[2]) and torch.equal(vm[0], op[0])  # (1,1) moved
    assert env["bid"] in index.batches(env["settings"]["storage"]["cache_root"], "demo")
    assert f"demo/{env['bid']}" in nodes["PoseFactoryLoadPoseFromR2"].INPUT_TYPES()["required"]["batch_id"][0]


@pytest.mark.blender
def test_pose_loader_hands_face_and_batch_input(nodes, env):
    full = load_pose(nodes, env, views="0", frames="1")["result"][0]
    no_hands = load_pose(nodes, env, views="0", frames="1", hands=False)["result"][0]
    kp = json.loads((env["src"] / "keypoints" / "v00_f0001.json").read_text())
    assert not torch.equal(full, no_hands)
    assert np.array_equal(u8(no_hands[0]), openpose.draw_pose(kp, hands=False))
    linked = load_pose(nodes, env, views="0", frames="1", project="other", batch_id="",
                       batch={"project": "demo", "batch_id": env["bid"]})["result"][0]
    assert torch.equal(linked, full)


@pytest.mark.blender
def test_loaders_refuse_bad_selections(nodes, env):
    with pytest.raises(SpecError, match=r"views: got '9', allowed: 0\.\.1 for this batch"):
        load_pose(nodes, env, views="9")
    with pytest.raises(SpecError, match=r"frames: got 'x'"):
        load_maps(nodes, env, frames="x")
    with pytest.raises(SpecError, match=r"parts: got 'wings'"):
        load_maps(nodes, env, parts="wings")
    with pytest.raises(SpecError, match=r"batch_id: got ''"):
        load_pose(nodes, env, batch_id="")
    from pose_factory.errors import StorageError

    with pytest.raises(StorageError, match="no manifest"):
        load_pose(nodes, env, batch_id="0123456789abcdef")


@pytest.mark.blender
def test_loaders_person_of_a_batch_of_one(nodes, env):
    """issue 22.3: person 0 of a batch rendered before several people is the batch as it was (its
    stored skeletons and its mask); another person is refused, naming how many people it has."""
    for node_id in ("PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader"):
        optional = nodes[node_id].INPUT_TYPES()["optional"]
        last = ["person", "feet", "hide"] if node_id == "PoseFactoryLoadPoseFromR2" else ["person"]  # feet, hide: issue 23
        assert list(optional)[-len(last):] == last and optional["person"][1]["default"] == "all"
        assert optional["person"][0] == ["all", *map(str, range(8))]
    op_all, kp_all, _ = load_pose(nodes, env)["result"]
    op_0, kp_0, _ = load_pose(nodes, env, person="0")["result"]
    assert torch.equal(op_all, op_0) and kp_all == kp_0
    mask_all, parts_all = load_maps(nodes, env)[3:]
    mask_0, parts_0 = load_maps(nodes, env, person="0")[3:]
    assert torch.equal(mask_all, mask_0) and torch.equal(parts_all, parts_0)
    for load in (load_pose, load_maps):
        with pytest.raises(SpecError, match=r"^person: got 1, allowed: all, or 0\.\.0: the batch has 1 person$"):
            load(nodes, env, person="1")


@pytest.mark.blender
def test_loaders_person_of_a_batch_of_two(nodes, env):
    """issue 22.3: person k of a two-person batch: its keypoints alone, its skeleton alone (what
    draw_pose draws of that person's entry of the stored frame), its masks from the instance map
    (k + 1 there, inside the batch's mask); the two people's masks do not overlap."""
    spec = {"render": {"width": W, "height": H}, "cameras": {"type": "orbit", "views": 2, "elevation": 5},
            "subjects": [{"type": "mannequin", "height": 1.9, "poses": ["a_pose", "waving"],
                          "place": {"position": [-0.5, 0.0]}},
                         {"type": "mannequin", "height": 1.3, "poses": ["t_pose"],
                          "place": {"position": [0.5, 0.3], "facing": 30}}]}
    manifest, _ = render_batch(spec, LocalStorage(env["tmp"] / "store"), project="demo")
    src = env["tmp"] / "store" / "projects" / "demo" / "batches" / manifest["batch_id"]
    bid = manifest["batch_id"]
    _, kp_all, _ = load_pose(nodes, env, batch_id=bid)["result"]
    assert [len(f["people"]) for f in kp_all] == [2] * 4
    masks = []
    for k in (0, 1):
        op, kp, _ = load_pose(nodes, env, batch_id=bid, person=str(k))["result"]
        assert [f["people"] for f in kp] == [[f["people"][k]] for f in kp_all]
        for i in range(4):
            assert np.array_equal(u8(op[i]), openpose.draw_pose(kp[i]))
        subject, parts = load_maps(nodes, env, batch_id=bid, person=str(k), parts="all")[3:]
        for i, name in enumerate(("v00_f0000", "v00_f0001", "v01_f0000", "v01_f0001")):
            own = read_png(str(src / "instance" / f"{name}.png")) == k + 1
            assert own.any() and np.array_equal(subject[i].numpy() == 1, own & (read_png(str(src / "mask" / f"{name}.png")) > 127))
            assert np.array_equal(parts[i].numpy() == 1, own & (read_png(str(src / "parts" / f"{name}.png")) > 0)
                                  & (read_png(str(src / "parts" / f"{name}.png")) < 32))
        masks.append(subject.numpy() == 1)
    assert not (masks[0] & masks[1]).any()
    all_mask = load_maps(nodes, env, batch_id=bid)[3].numpy() == 1
    assert np.array_equal(all_mask, masks[0] | masks[1])
    with pytest.raises(SpecError, match=r"^person: got 2, allowed: all, or 0\.\.1: the batch has 2 people$"):
        load_maps(nodes, env, batch_id=bid, person="2")
    # issue 23.2: hide per person ("1:" is the batch's person 1, before the person widget picks one)
    from pose_factory.render.hide import unhide_person

    op_h, kp_h, _ = load_pose(nodes, env, batch_id=bid, hide="1:left_hand, nose")["result"]
    op_1, kp_1, _ = load_pose(nodes, env, batch_id=bid, person="1", hide="1:left_hand, nose")["result"]
    op_0, kp_0, _ = load_pose(nodes, env, batch_id=bid, person="0", hide="1:left_hand")["result"]
    for i, f in enumerate(kp_all):
        p0, p1 = kp_h[i]["people"]
        assert p0["hand_left_keypoints_2d"] == f["people"][0]["hand_left_keypoints_2d"]
        assert p1["hand_left_keypoints_2d"] == [0.0] * 63 and p0["pose_keypoints_2d"][:3] == p1["pose_keypoints_2d"][:3] == [0.0] * 3
        assert kp_1[i]["people"] == [p1]
        assert [unhide_person(p) for p in kp_0[i]["people"]] == [f["people"][0]]  # person 0: nothing of it hidden
        assert all(kp_0[i]["people"][0][key] == f["people"][0][key] for key in openpose.PART_KEYS)
        assert np.array_equal(u8(op_h[i]), openpose.draw_pose(kp_h[i])) and np.array_equal(u8(op_1[i]), openpose.draw_pose(kp_1[i]))
    assert not torch.equal(op_h, load_pose(nodes, env, batch_id=bid)["result"][0])


@pytest.mark.blender
def test_a_new_loader_runs_with_its_defaults_once_a_batch_exists(nodes, env):
    """Issue 9.2: the dropdown's entries carry their project, so the defaults always agree."""
    cache_root = env["settings"]["storage"]["cache_root"]
    index.record(cache_root, env["manifest"])  # what Request Pose Batch does when it makes one
    newest = index.choices(cache_root)[0]
    for node_id in ("PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader"):
        cls = nodes[node_id]
        defaults = {name: opts[1]["default"] for name, opts in cls.INPUT_TYPES()["required"].items()}
        assert defaults["batch_id"] == newest and defaults["project"] == "default"
        assert cls.VALIDATE_INPUTS(batch_id=defaults["batch_id"], project=defaults["project"]) is True
        images = cls().load(**defaults)["result"][0]
        project, bid = newest.split("/")
        assert images.shape[0] == index.load(cache_root)[project][bid]["views"] * index.load(cache_root)[project][bid]["frames"]


@pytest.mark.blender
def test_a_batch_outside_the_chosen_project_names_the_project_that_has_it(nodes, env):
    from pose_factory.errors import StorageError

    index.record(env["settings"]["storage"]["cache_root"], env["manifest"])
    with pytest.raises(StorageError) as e:  # a bare id (an older workflow) with the project widget left at default
        load_pose(nodes, env, project="default", batch_id=env["bid"])
    assert str(e.value) == (f"batch {env['bid']} is not in project 'default'; it is in project 'demo': "
                            f"pick 'demo/{env['bid']}' in batch_id")
    # the entry's own project wins over the widget; a bare id with the right project still loads
    a = load_pose(nodes, env, project="default", batch_id=f"demo/{env['bid']}", views="0", frames="0")["result"][0]
    b = load_pose(nodes, env, project="demo", batch_id=env["bid"], views="0", frames="0")["result"][0]
    assert torch.equal(a, b)


def test_loader_selection_entries_carry_their_project(nodes):
    cls = nodes["PoseFactoryLoadPoseFromR2"]
    assert cls.VALIDATE_INPUTS(batch_id="demo/0123456789abcdef", project="default") is True
    assert cls.VALIDATE_INPUTS(batch_id="demo/0123456789abcdef", project=None) is True  # project linked
    assert "allowed: 1 to 64" in cls.VALIDATE_INPUTS(batch_id="Bad Name/0123456789abcdef", project="default")
    assert "16 hexadecimal" in cls.VALIDATE_INPUTS(batch_id="demo/nope", project="default")
    assert cls.IS_CHANGED(project="x", batch_id="demo/0123456789abcdef") != cls.IS_CHANGED(
        project="x", batch_id="demo/0123456789abcdee")


@pytest.mark.blender
def test_depth_normal_loader(nodes, env):
    depth, normal, seg, subject, parts = load_maps(nodes, env, views="1", frames="0-1", parts="hands, head")
    for t in (depth, normal, seg):
        assert t.dtype == torch.float32 and tuple(t.shape) == (2, H, W, 3)
        assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    for m in (subject, parts):
        assert m.dtype == torch.float32 and tuple(m.shape) == (2, H, W)
    for i, f in enumerate((0, 1)):
        name = f"v01_f{f:04d}.png"
        assert np.array_equal(u8(depth[i]), read_png(str(env["src"] / "depth" / name)))
        assert np.array_equal(u8(normal[i]), read_png(str(env["src"] / "normal" / name)))
        assert np.array_equal(u8(seg[i]), read_png(str(env["src"] / "seg" / name)))
        assert np.array_equal(subject[i].numpy() == 1, read_png(str(env["src"] / "mask" / name)) > 127)
        labels = read_png(str(env["src"] / "parts" / name))
        want = np.isin(labels, [PART_LABEL["hand_l"], PART_LABEL["hand_r"], PART_LABEL["head"]])
        assert want.any() and np.array_equal(parts[i].numpy() == 1, want)
    gl = load_maps(nodes, env, views="1", frames="0", normal_convention="opengl")[1]
    assert np.array_equal(u8(gl[0]), read_png(str(env["src"] / "normal_opengl" / "v01_f0000.png")))
    dx = load_maps(nodes, env, views="1", frames="0", normal_convention="directx")[1]
    assert np.array_equal(u8(dx[0]), read_png(str(env["src"] / "normal_directx" / "v01_f0000.png")))
    per_image = load_maps(nodes, env, depth_range="image")[0]
    for i in range(per_image.shape[0]):
        d = u8(per_image[i])[:, :, 0]
        assert d.max() == 255 and d[d > 0].min() == round(0.15 * 255)


@pytest.mark.blender
def test_second_load_reads_no_storage(nodes, env, monkeypatch):
    load_pose(nodes, env)
    load_maps(nodes, env, depth_range="image", normal_convention="directx")

    def no_storage(*a, **k):
        raise AssertionError("storage was opened for a cached batch")

    monkeypatch.setattr(settings_mod, "make_storage", no_storage)
    op = load_pose(nodes, env)["result"][0]
    assert op.shape[0] == 4
    load_maps(nodes, env, depth_range="image", normal_convention="directx")
    import shutil

    cached = Path(env["settings"]["storage"]["cache_root"]) / "demo" / env["bid"]
    shutil.rmtree(cached / "normal_opengl", ignore_errors=True)
    with pytest.raises(AssertionError, match="storage was opened"):  # and the check itself can fail
        load_maps(nodes, env, normal_convention="opengl")


@pytest.mark.blender
def test_is_changed_follows_widgets_and_the_index(nodes, env):
    cls = nodes["PoseFactoryLoadPoseFromR2"]
    w = dict(project="demo", batch_id=env["bid"], views="all", frames="all", order="view_major", hands=True,
             face=True, batch=None)
    load_pose(nodes, env)
    a, b = cls.IS_CHANGED(**w), cls.IS_CHANGED(**w)
    assert a == b and isinstance(a, str)
    assert cls.IS_CHANGED(**dict(w, views="0")) != a
    cache_root = env["settings"]["storage"]["cache_root"]
    index.record(cache_root, dict(env["manifest"], created_at="2099-01-01T00:00:00+00:00"))  # a forced re-render
    try:
        assert cls.IS_CHANGED(**w) != a
    finally:
        index.record(cache_root, env["manifest"])
    assert cls.IS_CHANGED(**w) == a


@pytest.mark.blender
def test_preview_grid_in_comfyui_temp_folder(nodes, env, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "folder_paths",
                        types.SimpleNamespace(get_temp_directory=lambda: str(tmp_path)))
    out = load_pose(nodes, env, views="0,1", frames="0")
    (img,) = out["ui"]["images"]
    assert img["type"] == "temp" and img["subfolder"] == ""
    grid = read_png(str(tmp_path / img["filename"]))
    assert grid.shape == (H, 2 * W + 2, 3)
    op = u8(out["result"][0][0])
    drawn = op.any(axis=-1)
    assert np.array_equal(grid[:H, :W][drawn], op[drawn])
    # the depth/normal loader: each tile is the depth over the normal of one image
    args = dict(project="demo", batch_id=env["bid"], views="1", frames="0", order="view_major", depth_range="batch",
                normal_convention="controlnet", parts="hands")
    out = nodes["PoseFactoryDepthNormalLoader"]().load(**args)
    (img,) = out["ui"]["images"]
    grid = read_png(str(tmp_path / img["filename"]))
    depth, normal = u8(out["result"][0][0]), u8(out["result"][1][0])
    assert np.array_equal(grid, np.concatenate([depth, normal], axis=0))
    # issue 21.11: the tiles in the grid nearest a square, not one row (a thin strip in the node):
    # 4 tiles of 96x128 in 3 columns, 2 rows
    out = nodes["PoseFactoryDepthNormalLoader"]().load(**dict(args, views="all", frames="all"))
    grid = read_png(str(tmp_path / out["ui"]["images"][0]["filename"]))
    assert grid.shape == (2 * 2 * H + 2, 3 * W + 4, 3)
    assert 0.5 <= grid.shape[1] / grid.shape[0] <= 2


# --- RequestPoseBatch end to end, with the local worker ----------------------------------------------
@pytest.fixture
def comfy_stubs(monkeypatch):
    """Just enough of ComfyUI's modules to see what the node sends them."""
    events = {"bars": [], "messages": [], "checks": 0}

    class ProgressBar:
        def __init__(self, total):
            self.total, self.values = total, []
            events["bars"].append(self)

        def update_absolute(self, value, total=None, preview=None):
            self.values.append((value, total))

    def throw_exception_if_processing_interrupted():
        events["checks"] += 1

    class Server:
        def send_sync(self, event, data, sid=None):
            events["messages"].append((event, data))

    comfy = types.ModuleType("comfy")
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.utils", types.SimpleNamespace(ProgressBar=ProgressBar))
    monkeypatch.setitem(sys.modules, "comfy.model_management", types.SimpleNamespace(
        throw_exception_if_processing_interrupted=throw_exception_if_processing_interrupted))
    monkeypatch.setitem(sys.modules, "server", types.SimpleNamespace(
        PromptServer=types.SimpleNamespace(instance=Server())))
    return events


@pytest.mark.blender
def test_request_pose_batch_end_to_end_local(nodes, env, comfy_stubs, monkeypatch):
    from pose_factory.jobs import client

    results = []
    real = client.run_job

    def recording(*a, **k):
        res = real(*a, **k)
        results.append(res)
        return res

    monkeypatch.setattr(client, "run_job", recording)
    (subject,) = nodes["PoseFactoryMannequin"]().make(1.7, "average")
    (poses,) = nodes["PoseFactoryPosePreset"]().make("t_pose", False, "fist")
    (cams,) = nodes["PoseFactoryCameraOrbit"]().make(2, 5.0, 0.0, 50.0, False, 0.0, 30.0)
    req = nodes["PoseFactoryRequestPoseBatch"]()
    args = dict(subject=subject, poses=poses, cameras=cams, width=64, height=64, depth=True, normal=True, seg=False,
                shaded=True, depth_range="batch", hands=True, face=True, sdxl_sticks=False, backend="local",
                project="E2E Test", force=False, unique_id="7")
    try:
        batch, bid = req.request(**args)
        assert batch == {"project": "e2e-test", "batch_id": bid} and results[-1].rendered
        assert comfy_stubs["checks"] > 0  # interrupt checks reached the client
        states = [d["state"] for e, d in comfy_stubs["messages"] if e == "pose_factory.progress"]
        assert "rendering" in states and states[-1] == "completed"
        last = [d for e, d in comfy_stubs["messages"] if e == "pose_factory.progress"][-1]
        assert (last["done"], last["total"]) == (2, 2)  # issue 9.7: 2 views x 1 pose, not "1/1"
        assert comfy_stubs["bars"][-1].values[-1] == (2, 2)
        assert all(d["node"] == "7" and d["batch_id"] == bid for _, d in comfy_stubs["messages"])
        assert comfy_stubs["bars"] and comfy_stubs["bars"][-1].values
        assert bid in index.batches(env["settings"]["storage"]["cache_root"], "e2e-test")
        op, kp, shaded = nodes["PoseFactoryLoadPoseFromR2"]().load("ignored", "", "all", "all", "view_major",
                                                                   True, True, batch=batch)["result"]
        assert tuple(op.shape) == (2, 64, 64, 3) and float(op.max()) > 0 and len(kp) == 2
        assert float(shaded.std()) > 0
        depth, normal, seg, subject_mask, _ = nodes["PoseFactoryDepthNormalLoader"]().load(
            "ignored", "", "all", "all", "view_major", "batch", "controlnet", "hands", batch=batch)["result"]
        assert float(depth.max()) > 0.9 and float(seg.max()) == 0.0  # seg was not rendered: black
        assert float(subject_mask.max()) == 0.0  # the mask comes with seg
        batch2, bid2 = req.request(**args)
        assert (batch2, bid2) == (batch, bid) and results[-1].rendered is False
        last = [d for e, d in comfy_stubs["messages"] if e == "pose_factory.progress"][-1]
        assert (last["state"], last["done"], last["total"]) == ("completed", 2, 2)  # from storage: still N/N
    finally:
        client.close_clients()


@pytest.mark.blender
def test_request_pose_batch_renders_a_scene_with_a_rig_and_a_mannequin(nodes, env, comfy_stubs, tmp_path, monkeypatch):
    """issue 22.4: Request Pose Batch on a Scene of a Custom Rig (the pack's template rig from the
    input folder) and a Mannequin, each with its own poses and none linked on the request: the rig's
    file is stored in the project's uploads/rigs/ by content, the batch has both people in every
    keypoints frame, the rig's report in the manifest, and the loaders give each person alone."""
    import hashlib

    from pose_factory import example_inputs

    inputs = tmp_path / "input"
    example_inputs.install(inputs)
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(
        get_input_directory=lambda: str(inputs), get_temp_directory=lambda: None))
    rig, report = nodes["PoseFactoryCustomRig"]().make(example_inputs.RIG, "", "mixamo", "", 1.6)
    assert "bone map mixamo" in report
    (wave,) = nodes["PoseFactoryPosePreset"]().make("waving", False, "open")
    (t_pose,) = nodes["PoseFactoryPosePreset"]().make("t_pose", False, "preset default")
    (mq_subject,) = nodes["PoseFactoryMannequin"]().make(1.8, "average")
    (scene,) = nodes["PoseFactoryScene"]().make(rig, -0.5, 0.0, 10.0, poses=wave)
    (scene,) = nodes["PoseFactoryScene"]().make(mq_subject, 0.5, 0.0, -10.0, poses=t_pose, scene=scene)
    (cams,) = nodes["PoseFactoryCameraOrbit"]().make(1, 5.0, 0.0, 50.0, False, 0.0, 0.0)
    try:
        batch, bid = nodes["PoseFactoryRequestPoseBatch"]().request(
            subject=scene, cameras=cams, width=W, height=H, depth=True, normal=False, seg=True, shaded=False,
            depth_range="batch", hands=True, face=True, sdxl_sticks=False, backend="local", project="people",
            force=False, unique_id="9")
    finally:
        from pose_factory.jobs import client

        client.close_clients()
    digest = hashlib.sha256((inputs / example_inputs.RIG).read_bytes()).hexdigest()
    store = env["tmp"] / "store" / "projects" / "people"
    assert (store / "uploads" / "rigs" / f"{digest}.glb").read_bytes() == (inputs / example_inputs.RIG).read_bytes()
    manifest = json.loads((store / "batches" / bid / "manifest.json").read_text())
    assert [s["type"] for s in manifest["spec"]["subjects"]] == ["rig", "mannequin"]
    assert manifest["spec"]["subjects"][0]["rig"] == {"sha256": digest, "format": "glb"}
    assert manifest["rig_reports"]["0"]["bone_map"] == "mixamo"
    _, kp, _ = nodes["PoseFactoryLoadPoseFromR2"]().load("x", "", "all", "all", "view_major", True, True,
                                                         batch=batch)["result"]
    assert len(kp[0]["people"]) == 2
    _, kp1, _ = nodes["PoseFactoryLoadPoseFromR2"]().load("x", "", "all", "all", "view_major", True, True,
                                                          batch=batch, person="1")["result"]
    assert kp1[0]["people"] == [kp[0]["people"][1]]
    masks = [nodes["PoseFactoryDepthNormalLoader"]().load("x", "", "all", "all", "view_major", "batch", "controlnet",
                                                           "all", batch=batch, person=k)["result"][3] for k in "01"]
    assert all(float(m.sum()) > 20 for m in masks) and not bool(((masks[0] > 0) & (masks[1] > 0)).any())


def _pack_files() -> dict:
    """Every file under the pack's folder (sizes), leaving out what Python, git and the shared venvs
    keep there (symlinks are not followed)."""
    import os

    out = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", ".pytest_cache", ".git")
                   and not os.path.islink(os.path.join(folder, d))]
        for f in files:
            path = Path(folder, f)
            if not path.is_symlink():
                out[str(path.relative_to(ROOT))] = path.stat().st_size
    return out


@pytest.mark.blender
def test_a_fresh_install_leaves_nothing_under_the_pack_after_a_render(nodes, comfy_stubs, tmp_path, monkeypatch):
    """Issue 9.1: inside ComfyUI (its folder_paths loaded), with no config, a render and a load write
    only under <ComfyUI output>/pose_factory."""
    from pose_factory.jobs import client

    output = tmp_path / "ComfyUI" / "output"
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(
        get_output_directory=lambda: str(output), get_temp_directory=lambda: str(tmp_path / "temp")))
    (tmp_path / "temp").mkdir()
    monkeypatch.delenv("POSE_FACTORY_CONFIG", raising=False)
    monkeypatch.setattr(settings_mod, "DEFAULT_CONFIG", tmp_path / "no-config.yaml")  # a fresh install has none
    before = _pack_files()
    (subject,) = nodes["PoseFactoryMannequin"]().make(1.7, "average")
    (poses,) = nodes["PoseFactoryPoseSequence"]().make("a_pose\nwaving mirror")
    (cams,) = nodes["PoseFactoryCameraOrbit"]().make(1, float(np.random.default_rng().uniform(0, 30)), 0.0, 50.0,
                                                    False, 0.0, 0.0)  # a new batch every run
    try:
        batch, bid = nodes["PoseFactoryRequestPoseBatch"]().request(
            subject, poses, cams, 64, 64, True, False, False, True, "batch", True, True, False, "local", "fresh",
            False, unique_id="1")
        out = nodes["PoseFactoryLoadPoseFromR2"]().load("default", "", "all", "all", "view_major", True, True,
                                                        batch=batch)
    finally:
        client.close_clients()
    assert out["result"][0].shape[0] == 2
    assert _pack_files() == before
    root = output / "pose_factory"
    assert (root / "storage" / "projects" / "fresh" / "batches" / bid / "manifest.json").is_file()
    assert (root / "raw" / "index.json").is_file() and (root / "raw" / "fresh" / bid).is_dir()


@pytest.mark.blender
def test_request_pose_batch_interrupt_cancels_without_a_manifest(nodes, env, comfy_stubs, monkeypatch):
    psutil = pytest.importorskip("psutil")

    class InterruptProcessingException(Exception):  # comfy.model_management's, by name
        pass

    Interrupted = InterruptProcessingException

    started = {"rendering": False}

    def interrupted():
        if started["rendering"]:
            raise Interrupted("processing interrupted")

    monkeypatch.setattr(sys.modules["comfy.model_management"], "throw_exception_if_processing_interrupted", interrupted)
    real_send = sys.modules["server"].PromptServer.instance.send_sync

    def send(event, data, sid=None):
        if data.get("state") == "rendering" and data.get("done") and not started["rendering"]:
            started["rendering"] = [p for p in psutil.Process().children(recursive=True)
                                    if "blender_scripts.render_batch" in " ".join(p.cmdline())]
        real_send(event, data, sid)

    monkeypatch.setattr(sys.modules["server"].PromptServer.instance, "send_sync", send)
    (subject,) = nodes["PoseFactoryMannequin"]().make(1.9, "heavy")
    (poses,) = nodes["PoseFactoryPosePreset"]().make("lunge", False, "preset default")
    (cams,) = nodes["PoseFactoryCameraOrbit"]().make(4, 5.0, 0.0, 50.0, False, 0.0, 0.0)
    req = nodes["PoseFactoryRequestPoseBatch"]()
    try:
        with pytest.raises(Interrupted):
            req.request(subject=subject, poses=poses, cameras=cams, width=256, height=256, depth=True, normal=True,
                        seg=True, shaded=True, depth_range="batch", hands=True, face=True, sdxl_sticks=False,
                        backend="local", project="cancel-test", force=True, unique_id="9")
        assert started["rendering"], "the job's Blender render process was running"
        # issue 21.6: the job's last message says cancelled, where it stopped (the sidebar follows it)
        event, last = comfy_stubs["messages"][-1]
        assert event == "pose_factory.progress" and last["state"] == "cancelled" and last["node"] == "9"
        gone, alive = psutil.wait_procs(started["rendering"], timeout=15)
        assert not alive, "the render process outlived the cancelled job"
        store = Path(env["settings"]["storage"]["local_root"]) / "projects" / "cancel-test"
        assert not list(store.glob("batches/*/manifest.json"))
    finally:
        from pose_factory.jobs import client

        client.close_clients()
