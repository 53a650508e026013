"""issue 22.4: the Scene and Custom Rig nodes, and Request Pose Batch taking a scene (several
people, each with its own poses or the request's) and a rig subject. No ComfyUI needed: the node
contract directly, ComfyUI's folder_paths replaced by a module naming a temp input folder."""
from __future__ import annotations

import sys
import types

import pytest

from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError

ORBIT = {"type": "orbit", "views": 2}


@pytest.fixture()
def people():
    from nodes import people_nodes

    return people_nodes


@pytest.fixture()
def build():
    from nodes.batch_nodes import build_spec

    return build_spec


@pytest.fixture()
def input_dir(tmp_path, monkeypatch):
    folder = tmp_path / "input"
    (folder / "3d").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(get_input_directory=lambda: str(folder)))
    return folder


def tall_and_short(people, poses_short=None):
    scene = people.PoseFactoryScene()
    (one,) = scene.make({"type": "mannequin", "height": 1.95, "build": "average"}, -0.5, 0.0, 0.0)
    (two,) = scene.make({"type": "mannequin", "height": 1.3, "build": "slim"}, 0.5, 0.2, -30.0,
                        poses=poses_short, scene=one)
    return two


def test_scene_chains_people_in_order_with_their_places(people):
    two = tall_and_short(people, poses_short=[{"preset": "waving"}])
    assert two["type"] == "scene" and [p["height"] for p in two["subjects"]] == [1.95, 1.3]
    assert two["subjects"][0]["place"] == {"position": [-0.5, 0.0], "facing": 0.0}
    assert two["subjects"][1]["place"] == {"position": [0.5, 0.2], "facing": -30.0}
    assert "poses" not in two["subjects"][0] and two["subjects"][1]["poses"] == [{"preset": "waving"}]
    (alone,) = people.PoseFactoryScene().make({"type": "mannequin", "height": 1.75}, 0.0, 0.0, 0.0)
    assert alone["subjects"] == [{"type": "mannequin", "height": 1.75}]  # the default place is not written


def test_a_scene_holds_at_most_eight_people(people):
    scene = None
    for k in range(8):
        (scene,) = people.PoseFactoryScene().make({"type": "mannequin"}, float(k), 0.0, 0.0, scene=scene)
    assert len(scene["subjects"]) == 8
    with pytest.raises(SpecError, match=r"^scene: got 8 people already, allowed: at most 8 people in one scene$"):
        people.PoseFactoryScene().make({"type": "mannequin"}, 9.0, 0.0, 0.0, scene=scene)
    with pytest.raises(SpecError, match=r"^subject: got a Scene, allowed: a Mannequin or Custom Rig subject"):
        people.PoseFactoryScene().make(scene, 0.0, 0.0, 0.0)
    with pytest.raises(SpecError, match=r"^scene: got a single subject, allowed: the output of another Scene node"):
        people.PoseFactoryScene().make({"type": "mannequin"}, 0.0, 0.0, 0.0, scene={"type": "mannequin"})
    with pytest.raises(SpecError, match=r"^position_x: got 60"):
        people.PoseFactoryScene().make({"type": "mannequin"}, 60.0, 0.0, 0.0)


def test_a_scene_of_one_at_the_default_place_is_the_same_batch(people, build):
    """Old and new graphs of one person agree: a Scene around a Mannequin at (0, 0) facing 0 gives
    the spec (and batch id) of the Mannequin linked straight into Request Pose Batch."""
    subject = {"type": "mannequin", "height": 1.8, "build": "slim"}
    (scene,) = people.PoseFactoryScene().make(subject, 0.0, 0.0, 0.0)
    plain = build(subject, ["a_pose", "waving"], ORBIT, 64, 64)
    assert build(scene, ["a_pose", "waving"], ORBIT, 64, 64) == plain
    (own,) = people.PoseFactoryScene().make(subject, 0.0, 0.0, 0.0, poses=["a_pose", "waving"])
    assert spec_mod.batch_id(build(own, None, ORBIT, 64, 64)) == spec_mod.batch_id(plain)


def test_request_pose_batch_poses_is_optional_and_names_a_person_without_any(people, build):
    from nodes.batch_nodes import PoseFactoryRequestPoseBatch

    types_ = PoseFactoryRequestPoseBatch.INPUT_TYPES()
    assert "poses" not in types_["required"] and types_["optional"]["poses"][0] == "POSE_FACTORY_POSES"
    # an old workflow's widgets keep their order (poses was a socket: the widgets are unchanged)
    assert [n for n, s in types_["required"].items() if not str(s[0]).startswith("POSE_FACTORY")] == [
        "width", "height", "depth", "normal", "seg", "shaded", "depth_range", "hands", "face", "sdxl_sticks",
        "backend", "project", "force"]
    assert list(types_["optional"])[1:] == ["occluded", "validate", "props", "feet"]
    with pytest.raises(SpecError, match=r"^poses: subject has no poses and none are linked here, allowed: a pose "
                                        r"list \(Pose Preset"):
        build({"type": "mannequin"}, None, ORBIT, 64, 64)
    with pytest.raises(SpecError, match=r"^poses: person 0 has no poses and none are linked here"):
        build(tall_and_short(people, poses_short=["waving"]), None, ORBIT, 64, 64)


def test_request_pose_batch_takes_a_scene_of_two(people, build):
    two = tall_and_short(people, poses_short=[{"preset": "waving"}])
    spec = build(two, ["a_pose", "t_pose"], ORBIT, 64, 64)
    tall, short = spec["subjects"]
    assert (tall["height"], short["height"]) == (1.95, 1.3)
    assert [p["preset"] for p in tall["poses"]] == ["a_pose", "t_pose"]  # the request's poses
    assert [p["preset"] for p in short["poses"]] == ["waving"]  # its own, held in every frame
    assert short["place"] == {"position": [0.5, 0.2], "facing": -30.0} and "place" not in tall or \
        tall["place"] == {"position": [-0.5, 0.0], "facing": 0.0}


def test_custom_rig_lists_rig_files_under_the_input_folder(people, input_dir):
    for name in ("3d/hero.glb", "3d/anime.VRM", "mixamo.fbx", "cube.obj", "walk.bvh", "3d/sub/bot.blend"):
        path = input_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    choices = people.PoseFactoryCustomRig.INPUT_TYPES()["required"]["rig_file"][0]
    assert choices == [people.NO_FILE, "3d/anime.VRM", "3d/hero.glb", "3d/sub/bot.blend", "mixamo.fbx"]


def test_custom_rig_refuses_bad_widgets_at_queue_time(people, input_dir, tmp_path):
    validate = people.PoseFactoryCustomRig.VALIDATE_INPUTS
    assert validate() is True  # all linked: nothing to check
    assert validate(path_or_key="", custom_map="") is True
    (tmp_path / "a.fbx").write_bytes(b"x")
    assert validate(path_or_key=str(tmp_path / "a.fbx")) is True
    assert validate(path_or_key=str(tmp_path / "missing.fbx")).startswith("path_or_key: no file at")
    assert validate(path_or_key=str(tmp_path / "a.obj")).startswith(
        "path_or_key: 'a.obj' is not a rig file, allowed: a rigged humanoid in .fbx, .glb, .gltf, .vrm, .blend")
    assert validate(path_or_key="sha256:abc.glb").startswith("path_or_key: got 'sha256:abc.glb'")
    assert validate(path_or_key="sha256:" + "a" * 64 + ".glb") is True
    assert validate(custom_map="{bad").startswith("custom_map: not valid JSON")
    assert validate(custom_map='{"l_hip": "Thigh.L"}') is True
    assert validate(custom_map='{"wing": "Bone"}').startswith("custom_map: wing: unknown joint 'wing'")
    assert validate(custom_map="[1]").startswith("custom_map: got a list")
    with pytest.raises(SpecError, match=r"^height: got 0\.1, allowed: 0 \(auto"):  # when it runs
        people.rig_subject(people.NO_FILE, str(tmp_path / "a.fbx"), "auto", "", 0.1)


def test_custom_rig_subject_of_its_widgets(people, input_dir):
    (input_dir / "3d" / "hero.glb").write_bytes(b"glTF")
    subject = people.rig_subject("3d/hero.glb", "", "mixamo", "", 0.0)
    assert subject == {"type": "rig", "rig": {"file": str((input_dir / "3d" / "hero.glb").resolve())},
                       "bone_map": "mixamo", "height": "auto"}
    custom = people.rig_subject("3d/hero.glb", "", "custom", '{"base": "mixamo", "joints": {"chest": "Spine1"}}', 1.6)
    assert custom["bone_map"] == {"base": "mixamo", "joints": {"chest": "Spine1"}} and custom["height"] == 1.6
    for args, message in (((people.NO_FILE, "", "auto", "", 0.0), r"^rig_file: no rig chosen"),
                          (("../hero.glb", "", "auto", "", 0.0), r"^rig_file: no file '\.\./hero\.glb'"),
                          (("3d/hero.glb", "", "custom", "", 0.0), r"^custom_map: empty, with bone_map custom")):
        with pytest.raises(SpecError, match=message):
            people.rig_subject(*args)


def test_mannequin_body_shape_widgets():
    """issue 22.4: body-shape widgets after build (helper "shapes" wrote them: proportions and the five
    numbers, 0 = the preset's); the default widgets give today's subject, so its batch id."""
    from nodes.spec_nodes import PoseFactoryMannequin
    from pose_factory.render import shape

    types_ = PoseFactoryMannequin.INPUT_TYPES()
    # optional: ComfyUI refuses an API prompt that lacks a required input ("Required input is missing"),
    # and every API prompt written before body shapes gives height and build only
    assert list(types_["required"]) == ["height", "build"]
    names = list(types_["required"]) + list(types_.get("optional", {}))
    assert names == ["height", "build", "proportions", "head_ratio", "shoulder_width", "hip_width", "arm_length",
                     "leg_length"]
    make = PoseFactoryMannequin().make
    assert make(1.75, "average") == make(1.75, "average", "adult", 0.0, 0.0, 0.0, 0.0, 0.0) == (
        {"type": "mannequin", "height": 1.75, "build": "average"},)
    (child,) = make(1.2, "slim", "child")
    assert child["shape"] == shape.normalize_shape("child", "shape")
    (broad,) = make(1.9, "heavy", "heroic", shoulder_width=1.3)
    assert broad["shape"] == dict(shape.normalize_shape("heroic", "s"), shoulder_width=1.3)
    with pytest.raises(SpecError, match=r"^head_ratio: got 3(\.0)?, allowed: a number from 4 to 9"):
        make(1.75, "average", head_ratio=3.0)


def minimal_glb(doc: dict) -> bytes:
    """A binary glTF holding only its JSON chunk (what the rig room's byte check reads)."""
    import json
    import struct

    body = json.dumps(doc).encode()
    body += b" " * (-len(body) % 4)
    return b"glTF" + struct.pack("<II", 2, 20 + len(body)) + struct.pack("<I4s", len(body), b"JSON") + body


def test_request_pose_batch_stores_a_rig_subjects_file_before_the_spec(people, build, input_dir, tmp_path):
    """A Custom Rig's file (from the input folder) is stored by content in the project's
    uploads/rigs/ and the spec names it by its hash, as props' meshes are; without storage (a dry
    run, the thumbnails) it is only hashed."""
    import hashlib

    from pose_factory.storage import LocalStorage

    data = minimal_glb({"asset": {"version": "2.0"}})
    (input_dir / "3d" / "hero.glb").write_bytes(data)
    rig = people.rig_subject("3d/hero.glb", "", "mixamo", "", 1.6)
    (scene,) = people.PoseFactoryScene().make({"type": "mannequin"}, -0.6, 0.0, 0.0)
    (scene,) = people.PoseFactoryScene().make(rig, 0.6, 0.0, 0.0, poses=["waving"], scene=scene)
    digest = hashlib.sha256(data).hexdigest()
    dry = build(scene, ["a_pose"], ORBIT, 64, 64, project="p1")
    assert dry["subjects"][1]["rig"] == {"sha256": digest, "format": "glb"}
    assert dry["subjects"][1]["bone_map"] == "mixamo" and dry["subjects"][1]["height"] == 1.6
    store = LocalStorage(tmp_path / "store")
    assert build(scene, ["a_pose"], ORBIT, 64, 64, project="p1", storage=store) == dry
    assert store.get_bytes(f"projects/p1/uploads/rigs/{digest}.glb") == data
    (input_dir / "3d" / "broken.glb").write_bytes(b"not a glb at all, just text")
    broken = people.rig_subject("3d/broken.glb", "", "auto", "", 0.0)
    with pytest.raises(SpecError, match=r"^subjects\[0\]\.rig: not a glTF binary \(GLB\) file"):
        build(broken, ["a_pose"], ORBIT, 64, 64)


@pytest.mark.blender
def test_custom_rig_reports_the_template_rig(people, input_dir, tmp_path, monkeypatch):
    """The Custom Rig node on the pack's template rig (copied into input/3d/ as the pack does):
    its subject, and the rig report of Blender's import in a worker child: the Mixamo names found,
    both hands; nothing is written beside the user's file. A file that is no GLB inside is a
    clear error naming it."""
    from pose_factory import example_inputs

    (tmp_path / "config.yaml").write_text(f"data_root: {tmp_path / 'data'}\n")
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(tmp_path / "config.yaml"))  # not this machine's config
    example_inputs.install(input_dir)
    before = sorted(p.name for p in (input_dir / "3d").iterdir())
    subject, report = people.PoseFactoryCustomRig().make("3d/pose_factory_mannequin_rig.glb", "", "mixamo", "", 0.0)
    assert subject["type"] == "rig" and subject["rig"] == {"file": str((input_dir / example_inputs.RIG).resolve())}
    assert report.startswith("pose_factory_mannequin_rig.glb (GLB): bone map mixamo, rest pose a-pose")
    assert "hands: left yes, right yes" in report and "missing (0)" in report
    assert sorted(p.name for p in (input_dir / "3d").iterdir()) == before  # nothing beside the user's file
    (input_dir / "3d" / "fake.glb").write_bytes(b"glTF not really")
    with pytest.raises(SpecError, match=r"^rig_file: not a glTF binary"):
        people.PoseFactoryCustomRig().make("3d/fake.glb", "", "auto", "", 0.0)


def test_custom_rig_runs_again_when_its_file_changes(people, input_dir):
    """IS_CHANGED follows the rig file's size and time (a rig replaced under the same name is read
    again), and the other widgets; a missing file never raises."""
    import os

    path = input_dir / "3d" / "hero.glb"
    path.write_bytes(b"glTF one")
    changed = people.PoseFactoryCustomRig.IS_CHANGED
    first = changed(rig_file="3d/hero.glb", path_or_key="", bone_map="auto", custom_map="", height=0.0)
    assert changed(rig_file="3d/hero.glb", path_or_key="", bone_map="auto", custom_map="", height=0.0) == first
    assert changed(rig_file="3d/hero.glb", path_or_key="", bone_map="mixamo", custom_map="", height=0.0) != first
    path.write_bytes(b"glTF two, longer")
    os.utime(path, ns=(1, 1))
    assert changed(rig_file="3d/hero.glb", path_or_key="", bone_map="auto", custom_map="", height=0.0) != first
    assert changed(rig_file="3d/gone.glb", path_or_key="").startswith("unavailable: rig_file: no file")
