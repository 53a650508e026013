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
    "vrm1": {"make": {"file": "vroid1.vrm", "naming": "vrm1", "rest": "a-pose"}, "presets": PRESETS,
             "place": {"position": [0.4, -0.3], "facing": 40.0}, "markers": True},
    "gltf_embedded": {"make": {"file": "embedded.glb", "naming": "rigify", "rest": "t-pose"}, "presets": PRESETS[:2],
                      "as_gltf": True},
    "blend_tall": {"make": {"file": "tall.blend", "naming": "mixamo", "rest": "a-pose", "height": 1.9, "prefix": ""},
                   "presets": PRESETS[:1]},
    "generic_custom_map": {"make": {"file": "generic.fbx", "naming": "generic", "rest": "t-pose"}, "presets": PRESETS,
                           "bone_map": "from truth"},
    "no_eyes": {"make": {"file": "no_eyes.glb", "naming": "mixamo", "rest": "a-pose", "drop": ["eyes"]},
                "presets": PRESETS[:2]},
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


@pytest.mark.parametrize("name", ["mixamo_fbx_a", "mixamo_fbx_t", "mixamo_glb_t", "rigify_fbx", "vrm0", "vrm1", "blend_tall",
                                  "generic_custom_map", "no_eyes", "gltf_embedded"])
def test_reimported_rig_keypoints_match_the_mannequin_before_export(results, name):
    r = results[name]
    naming = CASES[name]["make"]["naming"]
    if naming == "generic":  # Bone, Bone.001, ...: only a custom map (JSON) can map it
        assert isinstance(r["report"]["bone_map"], dict) and r["report"]["bone_map"]["root"] == "Bone"
    else:
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
    assert abs(s["report"]["height"] - 1.5) < 1e-3
    z = mq.build(1.75).all_vertices()[0][:, 2]
    assert abs(s["radius_scale"] - 1.5 / (z.max() - z.min())) < 1e-6  # against the mannequin's mesh height


def test_face_points_are_estimated_and_marked(results):
    r = results["vrm1"]
    est = np.array(r["estimated"])
    assert est[mq.KP_FACE].all() and est[mq.BODY_KEYPOINTS.index("nose")]
    assert not est[mq.BODY_KEYPOINTS.index("l_eye")]  # the VRM has eye bones: measured
    assert r["report"]["joints"]["estimated"] == ["nose", "r_ear", "l_ear", "face", "feet"]
    assert "l_eye" in r["report"]["joints"]["found"]
    n = results["no_eyes"]  # without eye bones the eyes are estimated from the head, as the other face points
    assert n["report"]["joints"]["estimated"] == ["nose", "r_eye", "l_eye", "r_ear", "l_ear", "face", "feet"]
    assert np.array(n["estimated"])[[mq.BODY_KEYPOINTS.index("l_eye"), mq.BODY_KEYPOINTS.index("r_eye")]].all()


@pytest.mark.parametrize("name", ["mixamo_fbx_a", "vrm0", "vrm1"])
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
    before = sorted(tmp_path.iterdir())
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
    assert sorted(tmp_path.iterdir()) == before + [huge]  # nothing written beside the user's files


# --- a whole batch: a rig beside a mannequin, through the client's store, the worker's checks and the render ---
def test_batch_with_a_rig_subject_renders_every_pass(tmp_path):
    """A T-pose Mixamo GLB with a ponytail (a mesh of its own on a bone no map names) and no left fingers, beside a
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
                    "--rest", "t-pose", "--drop", "l_fingers", "--hair", "--separate-hair"], check=True,
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
    assert report["triangles"] == json.loads(path.with_suffix(".json").read_text())["triangles"]  # the hair mesh kept
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


def test_rig_batch_renders_as_the_mannequin_it_was_made_from(blender, tmp_path):
    """The mannequin written as an A-pose Mixamo GLB and rendered as a rig subject gives the batch of
    the mannequin itself (same pose, same camera, 512x512): keypoints within 1 px, the same part
    labels (from the vertex weights) and mask, up to a few edge pixels."""
    import subprocess
    import sys

    from pose_factory.imageio import read_png
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage, batch_prefix

    path = tmp_path / "mq.glb"
    subprocess.run([sys.executable, "-m", "blender_scripts.make_rig", "--out", str(path), "--naming", "mixamo",
                    "--rest", "a-pose", "--no-sidecar"], check=True, capture_output=True,
                   cwd=str(rigs.__file__).rsplit("/pose_factory/", 1)[0])
    store = LocalStorage(tmp_path / "store")
    poses_ = ["fighting_stance", {"preset": "sitting", "joints": {"r_index1": {"curl": 60}, "neck": {"twist": 30}}}]
    out = {}
    for name, subject in (("mannequin", {"poses": poses_}),
                          ("rig", {"type": "rig", "rig": {"file": str(path)}, "poses": poses_})):
        raw = {"project": "same", "render": {"width": 512, "height": 512, "passes": ["keypoints", "seg", "depth16"]},
               "cameras": {"type": "list", "cameras": [{"location": [1.6, -3.6, 1.5], "look_at": [0.0, 0.0, 0.8]}]},
               "subjects": [subject]}
        manifest, _ = render_batch(rigs.resolve(raw, store, "same"), store)
        folder = tmp_path / "store" / batch_prefix("same", manifest["batch_id"])
        out[name] = [{k: (json.loads((folder / e["files"][k]["key"]).read_text()) if k == "keypoints"
                          else read_png(str(folder / e["files"][k]["key"]))) for k in ("keypoints", "parts", "mask")}
                     for e in sorted(manifest["entries"], key=lambda e: e["frame"])]
    for f, (m, r) in enumerate(zip(out["mannequin"], out["rig"])):
        for key in ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d"):
            a = np.array(m["keypoints"]["people"][0][key]).reshape(-1, 3)
            b = np.array(r["keypoints"]["people"][0][key]).reshape(-1, 3)
            assert (a[:, 2] > 0).tolist() == (b[:, 2] > 0).tolist(), (f, key)  # the same points seen
            seen = a[:, 2] > 0
            err = np.hypot(*(a[seen, :2] - b[seen, :2]).T).max() if seen.any() else 0.0
            assert err < 1.0, f"frame {f} {key}: {err:.3f} px"
        differ = (m["parts"] != r["parts"]).sum()
        assert differ <= 0.002 * (m["mask"] > 0).sum(), f"frame {f}: {differ} part pixels differ"
        assert (m["mask"] != r["mask"]).sum() <= 0.002 * (m["mask"] > 0).sum()


def test_worker_checks_each_stored_rig_once_and_names_the_subject(tmp_path):
    """prepare_files (the worker, before Blender renders): the same rig twice in a scene is fetched and
    imported once; a bone map the file cannot take is an error naming the subject's field."""
    import subprocess
    import sys

    from pose_factory import spec as spec_mod
    from pose_factory.storage import LocalStorage

    path = tmp_path / "hero.glb"
    subprocess.run([sys.executable, "-m", "blender_scripts.make_rig", "--out", str(path), "--naming", "mixamo",
                    "--no-sidecar"], check=True, capture_output=True, cwd=str(rigs.__file__).rsplit("/pose_factory/", 1)[0])
    store = LocalStorage(tmp_path / "store")
    rig = {"type": "rig", "rig": {"file": str(path)}, "poses": ["waving"]}
    raw = {"subjects": [{"poses": ["a_pose"]}, rig, dict(rig, place={"position": [1.0, 0.0], "facing": 90})]}
    spec = spec_mod.normalize_spec(rigs.resolve(raw, store, "default"))
    paths = rigs.prepare_files(spec, store, "default", str(tmp_path / "work"))
    assert paths[0] is None and paths[1] == paths[2] and sorted(p.name for p in (tmp_path / "work").iterdir()) == ["rig01.glb"]
    spec["subjects"][2]["bone_map"] = "vrm"
    with pytest.raises(SpecError) as e:
        rigs.prepare_files(spec, store, "default", str(tmp_path / "work2"))
    assert e.value.field == "subjects[2].bone_map" and "no VRM humanoid table" in e.value.message
