"""Users' rigs in Blender (blender_scripts/user_rig.py): rigged mannequins written by Blender's own
exporters (blender_scripts/make_rig.py: Mixamo FBX and GLB, Rigify, VRM 0.x and 1.0, .blend; A-pose
and T-pose rests; a hand left out) re-imported through our path and posed with presets. The oracle
is outside the rig code: the mannequin's own keypoints before export (our forward kinematics on the
body the file was made from), and markers at Blender's own posed bones found in rendered images.
Untrusted files: malformed, without an armature, without a humanoid, too large: clear errors."""
import json
import struct

import numpy as np
import pytest

from pose_factory import rigs
from pose_factory.errors import SpecError
from pose_factory.render import mannequin as mq

pytestmark = pytest.mark.blender

PRESETS = ["waving", "sitting", "fighting_stance"]
CASES = {
    "mixamo_fbx_a": {"make": {"file": "mixamo_a.fbx", "naming": "mixamo", "rest": "a-pose"}, "presets": PRESETS,
                     "markers": True},
    "mixamo_fbx_t": {"make": {"file": "mixamo_t.fbx", "naming": "mixamo", "rest": "t-pose"}, "presets": PRESETS},
    "mixamo_glb_t": {"make": {"file": "mixamo1_t.glb", "naming": "mixamo", "rest": "t-pose", "prefix": "mixamorig1:"},
                     "presets": PRESETS},
    "rigify_fbx": {"make": {"file": "rigify.fbx", "naming": "rigify", "rest": "a-pose", "prefix": "DEF-"},
                   "presets": PRESETS},
    "vrm0": {"make": {"file": "vroid0.vrm", "naming": "vrm0", "rest": "t-pose"}, "presets": PRESETS, "markers": True},
    "vrm1": {"make": {"file": "vroid1.vrm", "naming": "vrm1", "rest": "a-pose"}, "presets": PRESETS},
    "blend_tall": {"make": {"file": "tall.blend", "naming": "mixamo", "rest": "a-pose", "height": 1.9, "prefix": ""},
                   "presets": PRESETS[:1]},
    "no_left_hand": {"make": {"file": "no_hand.fbx", "naming": "mixamo", "rest": "a-pose", "drop": ["l_hand"]},
                     "presets": PRESETS[:1]},
    "no_fingers_scaled": {"make": {"file": "no_fingers.glb", "naming": "mixamo", "rest": "t-pose", "drop": ["r_fingers"]},
                          "presets": PRESETS[:1], "height": 1.5},
}


@pytest.fixture(scope="module")
def results(blender, tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_rigs")
    cases = folder / "cases.json"
    cases.write_text(json.dumps(CASES))
    blender("user_rig_check.py", folder, cases, timeout=1200)
    return json.loads((folder / "results.json").read_text(), parse_constant=lambda c: float(c))


def px_error(a, b):
    a, b = np.array(a, float), np.array(b, float)
    return np.linalg.norm(a - b, axis=-1)


@pytest.mark.parametrize("name", ["mixamo_fbx_a", "mixamo_fbx_t", "mixamo_glb_t", "rigify_fbx", "vrm0", "vrm1", "blend_tall"])
def test_reimported_rig_keypoints_match_the_mannequin_before_export(results, name):
    r = results[name]
    naming = CASES[name]["make"]["naming"]
    assert r["report"]["bone_map"] == ("vrm" if naming.startswith("vrm") else naming)
    assert r["report"]["rest"] == CASES[name]["make"]["rest"]
    assert r["report"]["hands"] == {"left": True, "right": True} and not r["report"]["joints"]["missing"]
    assert set(r["objects"]) == set(range(1, 18))  # every part label from the vertex weights
    for preset, p in r["presets"].items():
        ours = np.array(p["ours"], float)
        assert not np.isnan(ours).any(), (name, preset)
        err = px_error(p["px"], p["px_mannequin"]).max()
        assert err < 1.0, f"{name} {preset}: worst keypoint {err:.3f} px at 512x512"
        assert abs(p["lowest"]) < 1e-4  # grounded as the mannequin: its lowest deformed vertex on the floor


def test_a_pose_and_t_pose_rigs_agree_on_every_mapped_joint(results):
    a, t = results["mixamo_fbx_a"], results["mixamo_fbx_t"]
    assert (a["report"]["rest"], t["report"]["rest"]) == ("a-pose", "t-pose")
    for preset in PRESETS:
        err = px_error(a["presets"][preset]["px"], t["presets"][preset]["px"]).max()
        assert err < 1.0, f"{preset}: A-pose vs T-pose {err:.3f} px"


def test_rig_missing_a_hand_reports_it_and_has_empty_hand_keypoints(results):
    r = results["no_left_hand"]
    assert r["report"]["hands"] == {"left": False, "right": True}
    assert "l_wrist" in r["report"]["joints"]["missing"] and "l_index1" in r["report"]["joints"]["missing"]
    kp = np.array(r["presets"]["waving"]["ours"], float)
    assert np.isnan(kp[mq.KP_LHAND]).all() and not np.isnan(kp[mq.KP_RHAND]).any()
    assert np.isnan(kp[mq.BODY_KEYPOINTS.index("l_wrist")]).all()
    assert "hands: left no (empty hand keypoints), right yes" in rigs.report_text(r["report"])
    s = results["no_fingers_scaled"]
    assert s["report"]["hands"] == {"left": True, "right": False}
    assert np.isnan(np.array(s["presets"]["waving"]["ours"], float)[mq.KP_RHAND]).all()
    assert abs(s["report"]["height"] - 1.5) < 1e-3 and abs(s["radius_scale"] - 1.5 / 1.75) < 1e-6


def test_face_points_are_estimated_and_marked(results):
    r = results["vrm1"]
    est = np.array(r["estimated"])
    assert est[mq.KP_FACE].all() and est[mq.BODY_KEYPOINTS.index("nose")]
    assert not est[mq.BODY_KEYPOINTS.index("l_eye")]  # the VRM has eye bones: measured
    assert r["report"]["joints"]["estimated"] == ["nose", "r_ear", "l_ear", "face"]
    assert "l_eye" in r["report"]["joints"]["found"]


@pytest.mark.parametrize("name", ["mixamo_fbx_a", "vrm0"])
def test_markers_at_posed_bones_match_keypoints(results, name):
    rows = results[name]["markers"]
    assert len(rows) >= 2 * 15
    errors = []
    for r in rows:
        assert r["found"] is not None, f"marker {r['keypoint']} not seen"
        errors.append(float(np.hypot(*np.subtract(r["found"], r["ours"]))))
    assert max(errors) <= 0.5, f"worst keypoint error {max(errors):.3f} px"


# --- untrusted files: each through the worker's time-limited import child ---------------------------
def test_bad_files_give_clear_errors(blender, tmp_path):
    bad_fbx = tmp_path / "broken.fbx"
    bad_fbx.write_bytes(b"Kaydara FBX Binary  \0\x1a\0" + struct.pack("<I", 7400) + b"\xff" * 3000)
    js = b'{"asset":{"version":"2.0"},"buffers":[{"byteLength":999999}],"bufferViews":[{"buffer":0,"byteLength":999999}],' \
         b'"accessors":[{"bufferView":0,"componentType":5126,"count":83333,"type":"VEC3"}],' \
         b'"meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}],"nodes":[{"mesh":0}],"scenes":[{"nodes":[0]}]}'
    js += b" " * (-len(js) % 4)
    chunk = struct.pack("<I4s", len(js), b"JSON") + js
    bad_glb = tmp_path / "broken.glb"
    bad_glb.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(chunk)) + chunk)  # no BIN chunk for its buffer
    cube = tmp_path / "cube.glb"
    blender("make_plain_files.py", cube, tmp_path / "bones.fbx")
    for path, said in ((bad_fbx, "Blender could not read the FBX file"), (bad_glb, "Blender could not read the GLB file"),
                       (cube, "no armature"), (tmp_path / "bones.fbx", "finds no bone for root")):
        with pytest.raises(SpecError) as e:
            rigs.inspect_file(str(path))
        assert said in e.value.message and e.value.allowed, (path.name, e.value)
    huge = tmp_path / "huge.glb"
    with open(huge, "wb") as fh:
        fh.truncate(rigs.MAX_RIG_BYTES + 1)
    with pytest.raises(SpecError) as e:
        rigs.inspect_file(str(huge))
    assert "at most 209715200 bytes" in str(e.value)
    with pytest.raises(SpecError) as e:
        rigs.inspect_file(str(cube), timeout=0.01)
    assert "took more than" in e.value.message


# --- a whole batch: a rig beside a mannequin, through the client's store, the worker's checks and the render ---
def test_batch_with_a_rig_subject_renders_every_pass(tmp_path):
    """A T-pose Mixamo GLB with a ponytail on a bone no map names and no left fingers, beside a
    mannequin: the rig is stored by content, checked by the time-limited import, posed, split by
    part; its report is in the manifest, its keypoints in the JSON (empty left hand), its hair in
    the mask and the parts pass."""
    import subprocess
    import sys

    from pose_factory.imageio import read_png
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage, batch_prefix

    path = tmp_path / "hero.glb"
    subprocess.run([sys.executable, "-m", "blender_scripts.make_rig", "--out", str(path), "--naming", "mixamo",
                    "--rest", "t-pose", "--drop", "l_fingers", "--hair", "--no-sidecar"], check=True,
                   capture_output=True, cwd=str(rigs.__file__).rsplit("/pose_factory/", 1)[0])
    store = LocalStorage(tmp_path / "store")
    raw = {"project": "rigs", "render": {"width": 256, "height": 256, "passes": ["keypoints", "seg", "depth"]},
           "cameras": {"type": "list", "cameras": [{"location": [0.0, -4.5, 1.1], "look_at": [0.0, 0.0, 0.95]},
                                                   {"location": [-4.0, -1.0, 1.2], "look_at": [0.0, 0.0, 0.95]}]},
           "subjects": [{"type": "rig", "rig": {"file": str(path)}, "poses": ["waving", "sitting"],
                         "place": {"position": [0.45, 0.0], "facing": 0}},
                        {"poses": ["a_pose"], "place": {"position": [-0.55, 0.2], "facing": 0}}]}
    resolved = rigs.resolve(raw, store, "rigs")
    assert resolved["subjects"][0]["rig"]["format"] == "glb"
    manifest, rendered = render_batch(resolved, store)
    report = manifest["rig_reports"]["0"]
    assert report["bone_map"] == "mixamo" and report["rest"] == "t-pose" and "1" not in manifest["rig_reports"]
    assert report["hands"] == {"left": False, "right": True} and "mixamorig:Hair" in report["unmapped_bones"]
    folder = tmp_path / "store" / batch_prefix("rigs", manifest["batch_id"])
    e = next(e for e in manifest["entries"] if e["view"] == 0 and e["frame"] == 0)
    kp = json.loads((folder / e["files"]["keypoints"]["key"]).read_text())
    person = kp["people"][0]
    body = np.array(person["pose_keypoints_2d"]).reshape(-1, 3)
    assert (body[:14, 2] > 0).sum() >= 12  # seen from the front, the rig's body joints are there
    assert not any(person["hand_left_keypoints_2d"][2::3])  # no left fingers: an empty left hand
    assert any(person["hand_right_keypoints_2d"][2::3])
    parts = read_png(str(folder / e["files"]["parts"]["key"]))
    instance = read_png(str(folder / e["files"]["instance"]["key"]))
    rig_parts = set(np.unique(parts[instance == 1]))
    assert {1, 3, 5, 6, 7, 12, 13} <= rig_parts and rig_parts <= set(range(1, 18))
    assert (instance == 2).sum() > 500  # the mannequin beside it


def test_a_blend_rigs_python_never_runs(blender, tmp_path):
    """A .blend with a scripted driver and a registered text block, each writing a file when Python
    runs it: the driver does run in Blender with scripts allowed (the oracle is live), never through
    our import, even in a worker whose preferences allow scripts."""
    path, marker = tmp_path / "evil.blend", tmp_path / "ran.txt"
    made = json.loads(blender("make_evil_blend.py", path, marker).stdout.strip().splitlines()[-1])
    assert made == {"driver_live": True} and not marker.exists()
    out = json.loads(blender("make_evil_blend.py", path, marker, "--import").stdout.strip().splitlines()[-1])
    assert out["report"]["bone_map"] == "mixamo" and out["ran"] is False and not marker.exists()
    assert rigs.inspect_file(str(path))["format"] == "blend" and not marker.exists()
