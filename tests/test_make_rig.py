"""Issue 22: the rigged characters the tests, the template and the bench use (no asset can be
downloaded): blender_scripts/make_rig.py writes the mannequin as a Mixamo-, Rigify- or VRM-named
rig with Blender's own exporters; here each file is read back with Blender's own importers.

Oracles from outside make_rig: the mannequin's rest joints (pose_factory.render.rig, raised by
forward kinematics for the A/T-pose), the bone names of Blender's own Rigify metarig (read from
the rigify add-on's source that ships with bpy), the VRM specification's required humanoid bones,
Mixamo's published bone names, and glTF's node transforms computed here from the raw JSON."""
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pose_factory import example_inputs
from pose_factory.render import mannequin as mq
from pose_factory.render import rig

pytestmark = pytest.mark.blender

VARIANTS = {
    "mixamo_fbx_a": {"file": "mixamo_a.fbx", "naming": "mixamo", "rest": "a-pose"},
    "mixamo_glb_t_bare": {"file": "mixamo_t.glb", "naming": "mixamo", "rest": "t-pose", "prefix": ""},
    "mixamo1_fbx_t": {"file": "mixamo1_t.fbx", "naming": "mixamo", "rest": "t-pose", "prefix": "mixamorig1:"},
    "rigify_glb_a": {"file": "rigify_a.glb", "naming": "rigify", "rest": "a-pose"},
    "rigify_fbx_t": {"file": "rigify_t.fbx", "naming": "rigify", "rest": "t-pose"},
    "rigify_blend_down": {"file": "rigify_down.blend", "naming": "rigify", "rest": "arms-down"},
    "rigify_gltf_t": {"file": "rigify_t.gltf", "naming": "rigify", "rest": "t-pose"},
    "mannequin_names": {"file": "mannequin_names.glb", "naming": "mannequin", "rest": "arms-down"},
    "generic_names": {"file": "generic_names.fbx", "naming": "generic", "rest": "a-pose"},
    "vrm0": {"file": "model0.vrm", "naming": "vrm0", "rest": "t-pose"},
    "vrm1": {"file": "model1.vrm", "naming": "vrm1", "rest": "t-pose", "hair": True},
    "no_right_hand": {"file": "no_right_hand.glb", "naming": "mixamo", "rest": "a-pose", "drop": ["r_hand"]},
    "no_right_fingers": {"file": "no_right_fingers.fbx", "naming": "mixamo", "rest": "a-pose",
                         "drop": ["r_fingers"]},
    "no_armature": {"file": "no_armature.glb", "naming": "mixamo", "rest": "a-pose", "armature": False},
    "hair_object": {"file": "hair_object.fbx", "naming": "rigify", "rest": "a-pose", "hair": True,
                    "separate_hair": True},
    "hair_smooth": {"file": "hair_smooth.glb", "naming": "mixamo", "rest": "a-pose", "hair": True, "smooth": True},
    "bench_30k": {"file": "bench_30k.glb", "naming": "mixamo", "rest": "a-pose", "triangles": 30000},
    # the custom-rig template's options (blender_scripts/make_rig.py TEMPLATE_OPTIONS, kept in step below)
    "template": {"file": "template.glb", "naming": "mixamo", "rest": "a-pose", "hair": True, "sidecar": False},
}
ABDUCTION = {"a-pose": 45.0, "t-pose": 90.0, "arms-down": 0.0}
MANNEQUIN_TRIANGLES = len(mq.build().all_triangles())


@pytest.fixture(scope="module")
def results(tmp_path_factory, blender):
    out = tmp_path_factory.mktemp("rigs")
    blender("make_rig_check.py", out, json.dumps(VARIANTS))
    return json.loads((out / "results.json").read_text())


def expected_rest(rest: str, turned: bool = False) -> dict:
    """The mannequin's rest joints with both arms raised sideways (our forward kinematics), turned
    round about Z for a VRM 0.x model (it faces -Z in glTF, +Y in Blender)."""
    angle = ABDUCTION[rest]
    posed = rig.forward_kinematics(rig.rest_positions(1.75), {f"{s}_shoulder": {"abduct": angle} for s in "lr"})
    turn = np.diag([-1.0, -1.0, 1.0]) if turned else np.eye(3)
    return {j: turn @ posed.positions[i] for i, j in enumerate(rig.JOINT_NAMES)}


def rigify_metarig() -> dict:
    """{bone: parent} of Blender's own human metarig, read from the rigify add-on's source."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    source = next(Path(spec.origin).parent.glob("*/scripts/addons_core/rigify/metarigs/human.py")).read_text()
    names = re.findall(r"bone = arm\.edit_bones\.new\('([^']+)'\)\n((?:    .*\n)*?)    bones\['", source)
    out = {}
    for name, body in names:
        m = re.search(r"bone\.parent = arm\.edit_bones\[bones\['([^']+)'\]\]", body)
        out[name] = m.group(1) if m else None
    assert len(out) > 100 and "upper_arm.L" in out
    return out


WITH_ARMATURE = [n for n in VARIANTS if VARIANTS[n].get("armature", True)]


@pytest.mark.parametrize("name", WITH_ARMATURE)
def test_the_file_reimports_with_its_bone_names_and_one_mesh_skinned_to_the_armature(results, name):
    r = results[name]
    truth, imported = r["truth"], r["imported"]
    assert imported["armatures"] == 1
    assert set(imported["bones"]) == set(truth["bones"])  # Blender's importer kept every name as written
    assert imported["parents"] == truth["parents"]
    assert sorted(m["name"] for m in imported["mesh"]) == sorted(truth["objects"])
    for mesh in imported["mesh"]:
        assert mesh["parent"] == imported["armature_name"] and mesh["armature_modifier"] == [imported["armature_name"]]
        assert set(mesh["weighted_groups"]) <= set(imported["bones"])
        assert mesh["weight_sum_min"] == pytest.approx(1.0, abs=1e-4)
        assert mesh["weight_sum_max"] == pytest.approx(1.0, abs=1e-4)
        if not VARIANTS[name].get("smooth"):
            assert mesh["weight_max_min"] == pytest.approx(1.0, abs=1e-6)  # jointed: one bone per vertex
        else:
            assert mesh["weight_max_min"] < 0.8  # blended at the joints
    if not VARIANTS[name].get("triangles"):
        hair = 264 if VARIANTS[name].get("hair") else 0
        assert sum(m["triangles"] for m in imported["mesh"]) == MANNEQUIN_TRIANGLES + hair == truth["triangles"]
    assert r["size"] < 2_000_000


@pytest.mark.parametrize("name", WITH_ARMATURE)
def test_the_reimported_bone_heads_are_the_mannequins_rest_joints_within_1mm(results, name):
    truth, imported = results[name]["truth"], results[name]["imported"]
    want = expected_rest(VARIANTS[name]["rest"], turned=VARIANTS[name]["naming"] == "vrm0")
    assert len(truth["joints"]) >= 40 or VARIANTS[name].get("drop")
    for joint, bone in truth["joints"].items():
        err = np.linalg.norm(np.array(imported["bones"][bone]) - want[joint])
        assert err < 1e-3, f"{name}: {bone} ({joint}) is {err * 1000:.2f} mm from the mannequin's rest joint"


@pytest.mark.parametrize("name", [n for n in WITH_ARMATURE if not any(
    VARIANTS[n].get(k) for k in ("drop", "hair", "smooth", "triangles"))])
def test_the_reimported_rig_posed_bone_by_bone_deforms_exactly_as_the_mannequin(results, name):
    """Each mapped bone turned as our forward kinematics turns its joint (from the file's own rest,
    A- or T-pose), the skinned mesh lands on the mannequin's own posed vertices (weights to the right
    bones, weight 1), within 0.05 mm both ways."""
    d = results[name]["deform"]
    assert d["got_to_mannequin"] < 5e-5 and d["mannequin_to_got"] < 5e-5, d


@pytest.mark.parametrize("name", [n for n in WITH_ARMATURE if not VARIANTS[n].get("drop")])
def test_the_rest_pose_raises_the_arms_as_asked_and_the_character_faces_its_formats_way(results, name):
    r = results[name]
    truth, bones = r["truth"], r["imported"]["bones"]
    j = truth["joints"]
    for side in "lr":
        upper = np.array(bones[j[f"{side}_elbow"]]) - np.array(bones[j[f"{side}_shoulder"]])
        from_down = np.degrees(np.arccos(-upper[2] / np.linalg.norm(upper)))
        assert abs(from_down - ABDUCTION[VARIANTS[name]["rest"]]) < 3, (side, from_down)
        # outward: the left arm towards the character's left
        out = 1 if side == "l" else -1
        turned = -1 if VARIANTS[name]["naming"] == "vrm0" else 1
        if ABDUCTION[VARIANTS[name]["rest"]]:
            assert upper[0] * out * turned > 0.1
    # facing: the toes lie in front of the ankles (Blender: -Y; a VRM 0.x model turned round, +Y)
    foot = np.array(bones[j["l_toe"]]) - np.array(bones[j["l_ankle"]])
    assert truth["facing"] == ("+Y" if VARIANTS[name]["naming"] == "vrm0" else "-Y")
    assert foot[1] * (1 if truth["facing"] == "+Y" else -1) > 0.1


def test_mixamo_names_are_mixamos_with_any_prefix(results):
    for name, prefix in (("mixamo_fbx_a", "mixamorig:"), ("mixamo_glb_t_bare", ""), ("mixamo1_fbx_t", "mixamorig1:")):
        bones = set(results[name]["imported"]["bones"])
        for b in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End", "LeftShoulder", "LeftArm",
                  "LeftForeArm", "LeftHand", "LeftHandThumb1", "LeftHandIndex4", "RightHandPinky3", "LeftUpLeg",
                  "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToe_End", "RightEye"):
            assert prefix + b in bones, (name, prefix + b)
        assert all(b.startswith(prefix) for b in bones)


def test_our_own_and_generic_names(results):
    bones = results["mannequin_names"]["imported"]["bones"]
    assert set(rig.JOINT_NAMES) <= set(bones)  # motion/names.py's "mannequin" map names them all
    generic = results["generic_names"]
    assert all(re.fullmatch(r"Bone(\.\d{3})?", b) for b in generic["imported"]["bones"])
    assert len(generic["truth"]["joints"]) == len(rig.JOINT_NAMES)  # the custom map that fits


def test_a_mesh_without_an_armature(results):
    imported = results["no_armature"]["imported"]
    assert imported["armatures"] == 0 and imported["meshes"] == 1
    assert results["no_armature"]["truth"]["bones"] == {}
    doc_nodes = results["no_armature"]["gltf"]["node_names"]
    assert doc_nodes == ["PoseFactoryMannequin"] and not results["no_armature"]["gltf"]["extensions"]


def test_rigify_names_and_parents_are_blenders_own_metarigs(results):
    metarig = rigify_metarig()
    for name in ("rigify_glb_a", "rigify_fbx_t", "rigify_blend_down"):
        parents = results[name]["imported"]["parents"]
        ours = {b for b in parents if not b.endswith("_end") and b != "hair"}
        assert ours <= set(metarig), sorted(ours - set(metarig))
        for b in ours:
            assert parents[b] == metarig[b], (b, parents[b], metarig[b])
        for b in ("spine", "spine.001", "spine.004", "spine.006", "upper_arm.L", "forearm.R", "hand.L",
                  "thumb.01.L", "f_index.03.R", "f_pinky.01.L", "palm.04.L", "thigh.R", "shin.L", "foot.L", "toe.R"):
            assert b in ours


VRM0_REQUIRED = {"hips", "leftUpperLeg", "rightUpperLeg", "leftLowerLeg", "rightLowerLeg", "leftFoot", "rightFoot",
                 "spine", "chest", "neck", "head", "leftUpperArm", "rightUpperArm", "leftLowerArm", "rightLowerArm",
                 "leftHand", "rightHand"}
VRM1_REQUIRED = VRM0_REQUIRED - {"chest", "neck"}


def test_the_vrm_humanoid_extension_follows_the_specification(results):
    for name, ext_name in (("vrm0", "VRM"), ("vrm1", "VRMC_vrm")):
        gltf = results[name]["gltf"]
        assert ext_name in gltf["extensionsUsed"]
        ext = gltf["extensions"][ext_name]
        if ext_name == "VRM":
            assert ext["specVersion"] == "0.0" and ext["meta"]["title"]
            human = {b["bone"]: b["node"] for b in ext["humanoid"]["humanBones"]}
            assert len(human) == len(ext["humanoid"]["humanBones"])  # each bone once
            assert {"leftThumbProximal", "leftThumbIntermediate", "leftThumbDistal"} <= set(human)
            assert VRM0_REQUIRED <= set(human)
        else:
            assert ext["specVersion"] == "1.0"
            meta = ext["meta"]
            assert meta["name"] and meta["authors"] and meta["licenseUrl"] == "https://vrm.dev/licenses/1.0/"
            human = {b: v["node"] for b, v in ext["humanoid"]["humanBones"].items()}
            assert {"leftThumbMetacarpal", "leftThumbProximal", "leftThumbDistal"} <= set(human)
            assert VRM1_REQUIRED <= set(human)
        assert len(set(human.values())) == len(human)
        bones = set(results[name]["imported"]["bones"])
        for bone, node in human.items():  # every node index names a bone Blender's importer created
            assert gltf["node_names"][node] in bones, (bone, node)
        # VRM 0.x faces -Z, VRM 1.0 +Z (glTF's own frame, from the nodes' transforms)
        world = gltf["world"]
        toe = np.array(world[gltf["node_names"][human["leftToes"]]]) - np.array(world[gltf["node_names"][human["leftFoot"]]])
        assert toe[2] * (-1 if ext_name == "VRM" else 1) > 0.1
        # the model's left is its left: +X when facing +Z, -X when facing -Z
        hand = world[gltf["node_names"][human["leftHand"]]]
        assert hand[0] * (-1 if ext_name == "VRM" else 1) > 0.3
        head = world[gltf["node_names"][human["head"]]]
        assert head[1] > 1.4  # +Y up


def test_a_rig_missing_a_hand_or_its_fingers_keeps_its_mesh_on_the_forearm_or_hand(results):
    hand = results["no_right_hand"]
    bones = set(hand["imported"]["bones"])
    assert "mixamorig:RightHand" not in bones and not any(b.startswith("mixamorig:RightHand") for b in bones)
    assert "mixamorig:LeftHandIndex1" in bones and "mixamorig:RightForeArm" in bones
    assert hand["imported"]["mesh"][0]["triangles"] == MANNEQUIN_TRIANGLES  # the hand's mesh is still there
    fingers = results["no_right_fingers"]
    bones = set(fingers["imported"]["bones"])
    assert "mixamorig:RightHand" in bones and not any(b.startswith("mixamorig:RightHandIndex") for b in bones)
    assert not any(j.startswith("r_") and j[2:-1] in rig.FINGERS for j in fingers["truth"]["joints"])


def test_hair_is_a_mesh_part_on_its_own_bone(results):
    for name in ("vrm1", "hair_smooth"):
        mesh = results[name]["imported"]["mesh"][0]
        hair_bone = next(b for b in results[name]["truth"]["bones"] if b.endswith("Hair") or "Hair1" in b)
        assert hair_bone in mesh["weighted_groups"]
        # the ponytail reaches behind the head: the mesh is deeper at the back than the mannequin's
        assert mesh["bbox_max"][1] > 0.14


def test_hair_can_be_a_mesh_object_of_its_own_on_the_same_armature(results):
    meshes = {m["name"]: m for m in results["hair_object"]["imported"]["mesh"]}
    assert meshes["PoseFactoryHair"]["weighted_groups"] == ["hair"] and meshes["PoseFactoryHair"]["triangles"] == 264
    assert "hair" not in meshes["PoseFactoryMannequin"]["weighted_groups"]
    assert meshes["PoseFactoryMannequin"]["triangles"] == MANNEQUIN_TRIANGLES
    assert meshes["PoseFactoryHair"]["bbox_max"][1] > 0.14 > meshes["PoseFactoryMannequin"]["bbox_max"][1]


def test_the_bench_rig_has_about_30k_triangles(results):
    mesh = results["bench_30k"]["imported"]["mesh"][0]
    assert 28_000 <= mesh["triangles"] <= 34_000


def test_the_committed_template_rig_is_what_make_rig_template_writes(results):
    """The custom-rig template's GLB is regenerated byte for byte (`make rig-template`), so the
    committed file is never stale; it is small and its bone names are Mixamo's."""
    root = Path(__file__).resolve().parent.parent
    committed = root / "example_workflows" / "input" / example_inputs.RIG
    text = (root / "blender_scripts" / "make_rig.py").read_text()
    options = {k: v for k, v in VARIANTS["template"].items() if k != "file"}
    assert f"TEMPLATE_OPTIONS = {options!r}".replace("'", '"') in text
    assert committed.stat().st_size < 2_000_000
    assert hashlib.sha256(committed.read_bytes()).hexdigest() == results["template"]["sha256"]
    assert "mixamorig:LeftForeArm" in results["template"]["imported"]["bones"]


def test_bad_options_are_clear_errors(tmp_path):
    """An option make_rig does not know names itself and what is allowed."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    for args, says in ((["--naming", "mixamo", "--format", "vrm"], "format vrm needs naming vrm0 or vrm1"),
                       (["--naming", "vrm1", "--format", "fbx"], "naming vrm1 writes a GLB"),
                       (["--format", "obj"], "invalid choice: 'obj'"),
                       (["--naming", "vrm0", "--no-armature"], "a VRM needs its armature"),
                       (["--drop", "l_tail"], "drop: unknown bone 'l_tail'"),
                       (["--drop", "root"], "the root (hips) cannot be dropped")):
        proc = subprocess.run([sys.executable, "-m", "blender_scripts.make_rig", "--out", str(tmp_path / "x.glb"), *args],
                              cwd=root, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and says in proc.stderr, (args, proc.stderr[-500:])
    assert not (tmp_path / "x.glb").exists()
