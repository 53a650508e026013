"""Pose extraction and the posture API with the real MediaPipe model (its wheel's, offline) on our
own shaded renders (real bpy): a person is found and placed where our exact keypoints are, the
posture angles of poses with known tilts agree with the same angles measured on the rig's posture
landmarks (acromion, tragus, joint centres: mannequin.posture_landmarks) projected, the contract's
every bad input gets its error, both input forms run through the real handler under the local v2
server with the unmodified runpod.Endpoint, and the nodes through the local worker."""
import asyncio
import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest

from pose_factory import imageio, render, storage as storage_mod
from pose_factory.render import cameras, mannequin as mq, poses as poses_mod
from pose_factory.extract import mediapipe_to_openpose
from pose_factory.extract import posture as P

PRESETS = ["standing", "walk_left_step", "sitting"]
# known tilts from explicit joint rotations (the rig's DOFs, docs/poses.md); the first two are the
# front and side pair the job, server and node tests send
FRONT_TILTED = {"preset": "a_pose", "joints": {"root": {"roll": 5}, "spine": {"side": -10}, "chest": {"side": 10},
                                               "neck": {"side": 12}}}
SIDE_LEANING = {"preset": "a_pose", "joints": {"spine": {"flex": 15}, "neck": {"flex": 10},
                                               "l_hip": {"flex": 10}, "r_hip": {"flex": 10}}}
POSTURE_POSES = {"tilted": FRONT_TILTED, "leaning": SIDE_LEANING,
                 "shoulders_tilted_10": {"preset": "a_pose", "joints": {"chest": {"side": 10}}},
                 "head_forward_15": {"preset": "a_pose", "joints": {"neck": {"flex": 15}}},
                 "trunk_lean_15": {"preset": "a_pose", "joints": {"spine": {"flex": 15}}}}


def execute(job_input):
    from pod_worker.request import execute as run

    return asyncio.run(run(job_input, lambda e: None))


def b64_png(rgb) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def huge_png(width, height) -> bytes:
    """A real, complete 8-bit gray PNG of width × height (all black), streamed: no big array."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    z, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(z.compress(row))
    parts.append(z.flush())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


def all_points(frame) -> np.ndarray:
    """Our exact keypoints' 18 body points, the ones the body covers at their true position."""
    person = frame["people"][0]
    seen = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    covered = np.array(person["pose_factory"]["occluded"]["pose_keypoints_2d"]).reshape(18, 3)
    return np.where((seen[:, 2] == 1.0)[:, None], seen[:, :2], covered[:, :2])


# --- the contract's bad inputs: no model, no render needed ------------------------------------------
GREY = np.full((120, 160, 3), 128, np.uint8)


@pytest.mark.parametrize("job_input, message", [
    ({}, "Image validation failed: no front and no side image"),
    ({"front": b64_png(GREY)}, "Image validation failed: no side image"),
    ({"input": {"side_image": b64_png(GREY)}}, "Image validation failed: no front_image image"),
    ({"input": {}}, "Image validation failed: no front and no side image"),
    ({"front": "this is not base64!", "side": b64_png(GREY)}, "Image validation failed: front image: not valid base64"),
    ({"front": b64_png(GREY), "side": base64.b64encode(b"just some text\n" * 20).decode()},
     "Image validation failed: side image: not a JPEG or PNG image"),
    ({"front": b64_png(np.zeros((50, 50, 3))), "side": b64_png(GREY)},
     "Image validation failed: front image: 50×50 pixels, allowed at least 100×100"),
    ({"front": b64_png(GREY), "side": base64.b64encode(huge_png(20000, 20000)).decode()},
     "Image validation failed: side image: 20000×20000 pixels, allowed at most 8192 a side"),
    ({"front": 12, "side": b64_png(GREY)}, "Image validation failed: front image: expected a base64 string, got int"),
    ({"front": [b64_png(GREY)], "side": b64_png(GREY)}, "Image validation failed: front image: expected a base64 string"),
    ({"input": {"front_image": b64_png(GREY), "side_image": None}}, "Image validation failed: no side_image image"),
    ({"front": b64_png(GREY), "side": b64_png(GREY), "colour": "red"}, "Image validation failed: unknown field 'colour'"),
    ({"front": b64_png(GREY), "side_image": b64_png(GREY)}, "Image validation failed: give either front/side"),
    ({"front": b64_png(GREY), "side": b64_png(GREY), "points": "yes"}, "Image validation failed: points: got 'yes'"),
])
def test_every_bad_posture_input_gets_the_contracts_error(job_input, message):
    out = execute(job_input)
    assert out["status"] == "error" and out["message"].startswith(message), out
    assert set(out) >= {"status", "message"} and "data" not in out and "error" not in out


def test_posture_inputs_are_recognised_by_shape_and_jobspecs_are_not():
    from pod_worker.request import parse_input

    for job_input in ({"front": "x", "side": "y"}, {"input": {"front_image": "x", "side_image": "y"}},
                      {"front_image": "x", "side_image": "y"}, {}, {"side": 1}):
        assert parse_input(job_input)["kind"] == "posture"
    assert parse_input({"extract": {"images": []}})["kind"] == "extract"
    with pytest.raises(ValueError, match="input.spec"):
        parse_input({"project": "x"})


def test_angles_follow_their_documented_signs():
    """Hand-made points (no model): the sign conventions of the module docstring."""
    p = np.zeros((18, 2))
    # front view: the subject's right on the image's left; left shoulder/hip/ear higher (smaller y)
    p[[P.R_SH, P.L_SH, P.R_HIP, P.L_HIP, P.R_EAR, P.L_EAR]] = [[100, 110], [200, 100], [120, 300], [180, 300],
                                                              [140, 50], [160, 50 - 20 * np.tan(np.radians(30))]]
    a = P.front_angles(p)
    assert a["shoulder_tilt"] == pytest.approx(np.degrees(np.arctan2(10, 100)), abs=0.01)
    assert a["pelvic_tilt"] == 0 and a["head_tilt"] == pytest.approx(30, abs=0.01)
    assert a["body_tilt"] == 0  # the shoulders' midpoint above the hips'
    p[[P.R_SH, P.L_SH]] += [40, 0]  # shoulders to the image's right: the subject's left
    assert P.front_angles(p)["body_tilt"] == pytest.approx(np.degrees(np.arctan2(40, 195)), abs=0.01)
    # side view facing the image's left (nose left of the ears): leaning forward = shoulders left of hips
    s = np.zeros((18, 2))
    s[[P.R_EAR, P.L_EAR]], s[P.NOSE] = [[110, 50], [110, 50]], [90, 55]
    s[[P.R_SH, P.L_SH]], s[[P.R_HIP, P.L_HIP]] = [[120, 100], [120, 100]], [[140, 300], [140, 300]]
    s[[P.R_KNEE, P.L_KNEE]], s[[P.R_ANKLE, P.L_ANKLE]] = [[120, 450], [120, 450]], [[140, 600], [140, 600]]
    a = P.side_angles(s)
    assert a["back_tilt"] == pytest.approx(np.degrees(np.arctan2(20, 200)), abs=0.01)
    assert a["neck_tilt"] == pytest.approx(np.degrees(np.arctan2(10, 50)), abs=0.01)
    assert a["body_tilt"] == pytest.approx(np.degrees(np.arctan2(20, 500)), abs=0.01)
    assert a["hip_tilt"] == pytest.approx(np.degrees(np.arctan2(20, 150)), abs=0.01)  # knees forward
    mirrored = s * [-1, 1]  # the same posture facing the image's right
    assert P.side_angles(mirrored) == pytest.approx(a)


def test_posture_landmarks_are_the_acromion_and_tragus_moving_with_the_chest_and_head():
    """The truth's points (docs/extraction.md, "What the points are"): each shoulder raised by the
    upper arm's radius along the chest's up axis, each ear moved forward by the ear's front-to-back
    half-axis along the head's forward axis, both scaled with the body; the rest are the keypoints."""
    i = {n: mq.BODY_KEYPOINTS.index(n) for n in ("l_shoulder", "r_shoulder", "l_ear", "r_ear")}
    for height, build in ((1.75, "average"), (1.6, "heavy")):
        body = mq.build(height, build)
        s, g = height / 1.75, {"average": 1.0, "heavy": 1.22}[build]
        rest = poses_mod.pose_body(body, "rest")
        kp, pts = mq.posed_keypoints(body, rest)[:18], mq.posture_landmarks(body, rest)
        for side in ("l", "r"):
            assert pts[i[f"{side}_shoulder"]] - kp[i[f"{side}_shoulder"]] == pytest.approx([0, 0, 0.055 * s * g])
            assert pts[i[f"{side}_ear"]] - kp[i[f"{side}_ear"]] == pytest.approx([0, -0.022 * s, 0])  # -y: forward
        others = [k for k in range(18) if k not in i.values()]
        assert np.array_equal(pts[others], kp[others])
    # a chest bent 10° to the subject's left (+X), and a head nodding 20° forward, carry them along
    body = mq.build()
    bent = poses_mod.pose_body(body, {"joints": {"chest": {"side": 10}}})
    up = mq.posture_landmarks(body, bent)[i["l_shoulder"]] - mq.posed_keypoints(body, bent)[i["l_shoulder"]]
    assert np.degrees(np.arctan2(up[0], up[2])) == pytest.approx(10) and np.linalg.norm(up) == pytest.approx(0.055)
    nod = poses_mod.pose_body(body, {"joints": {"neck": {"flex": 20}}})
    fwd = mq.posture_landmarks(body, nod)[i["r_ear"]] - mq.posed_keypoints(body, nod)[i["r_ear"]]
    assert np.degrees(np.arctan2(-fwd[2], -fwd[1])) == pytest.approx(20) and np.linalg.norm(fwd) == pytest.approx(0.022)


# --- with the real model on our renders -------------------------------------------------------------
@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Front (azimuth 0) and three-quarter (±45°) views of three presets, and the front, both
    profiles and the back of the posture poses, 512² shaded with exact keypoints."""
    pytest.importorskip("bpy")
    root = tmp_path_factory.mktemp("extract_renders")
    store = storage_mod.LocalStorage(root)
    out = {}
    for name, poses, cams in (
            ("presets", PRESETS, {"type": "orbit", "views": 8, "elevation": 10, "start_azimuth": 0}),
            ("posture", list(POSTURE_POSES.values()), {"type": "orbit", "views": 4, "elevation": 0, "start_azimuth": 0})):
        spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "extract-tests",
                "render": {"width": 512, "height": 512, "passes": ["keypoints", "shaded"]}, "cameras": cams,
                "subjects": [{"type": "mannequin", "poses": poses}]}
        manifest, _ = render.render_batch(spec, store)
        folder = root / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
        out[name] = (manifest, folder)
    return out


def entry_files(manifest, folder, view, frame):
    e = next(e for e in manifest["entries"] if e["view"] == view and e["frame"] == frame)
    img = imageio.read_png(str(folder / e["files"]["shaded"]["key"]))
    return img, json.loads((folder / e["files"]["keypoints"]["key"]).read_text())


@pytest.mark.blender
@pytest.mark.mediapipe
def test_person_found_on_presets_with_pck_at_0_1_of_at_least_0_9(renders):
    from pose_factory.extract.detector import Detector

    manifest, folder = renders["presets"]
    det = Detector()
    assert det.backend == "solutions"
    hits, total = 0, 0
    for frame in range(len(PRESETS)):
        for view in (0, 1, 7):  # front, and three-quarter from either side
            img, kp = entry_files(manifest, folder, view, frame)
            found = det.detect(img)
            assert found is not None, f"no person in {PRESETS[frame]} view {view}"
            theirs, _ = mediapipe_to_openpose(found.landmarks, 512, 512)
            ours = np.array(kp["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
            j = manifest["joints_3d"][frame]["joints"]
            xy, _ = cameras.project(manifest["views"][view], np.array([j["neck"], j["l_hip"], j["r_hip"]]))
            torso = np.linalg.norm(xy[0] - (xy[1] + xy[2]) / 2)
            seen = ours[:, 2] == 1.0
            dist = np.linalg.norm(theirs - ours[:, :2], axis=1)[seen]
            hits, total = hits + int((dist <= 0.1 * torso).sum()), total + int(seen.sum())
    assert total >= 120
    assert hits / total >= 0.9, f"PCK@0.1 = {hits / total:.3f}"
    det.close()


@pytest.mark.mediapipe
def test_a_blank_image_has_no_person_and_the_error_says_so():
    from pose_factory.extract.detector import Detector

    assert Detector().detect(np.full((512, 512, 3), 128, np.uint8)) is None
    blank = b64_png(np.full((300, 300, 3), 128, np.uint8))
    out = execute({"front": blank, "side": blank})
    assert out == {"status": "error", "message": "Could not detect pose landmarks in the front image (no person found)",
                   **{k: out[k] for k in out if k not in ("status", "message")}}
    ex = execute({"extract": {"images": [blank]}})
    assert ex["found"] == [False] and ex["frames"][0]["people"] == [] and ex["backend"] == "solutions"


@pytest.mark.mediapipe
def test_the_tasks_backend_without_its_model_file_is_a_clear_error(tmp_path, monkeypatch):
    from pose_factory.extract.detector import TASK_ENV, Detector, ExtractorUnavailable

    missing = tmp_path / "pose_landmarker_full.task"
    with pytest.raises(ExtractorUnavailable, match="POSE_FACTORY_MEDIAPIPE_TASK names .*pose_landmarker_full.task.*"
                                                   "not a file"):
        Detector(task_path=str(missing))
    bad = tmp_path / "broken.task"
    bad.write_bytes(b"not a model")
    with pytest.raises(ExtractorUnavailable, match="Tasks backend could not load"):
        Detector(task_path=str(bad))
    monkeypatch.setenv(TASK_ENV, str(missing))  # the environment chooses it at run time
    with pytest.raises(ExtractorUnavailable, match="not a file"):
        Detector()


def truth_and_measured(renders, view_name, view, frame):
    """A posture render and the truth of its angles: the posture job's angle functions on the rig's
    posture landmarks (shoulders at the acromion, ears at the tragus, the other points the joint
    centres and keypoints: mannequin.posture_landmarks) of the rendered pose, projected by the view's
    camera."""
    manifest, folder = renders["posture"]
    img, kp = entry_files(manifest, folder, view, frame)
    subject = manifest["spec"]["subjects"][0]
    body = mq.build(subject["height"], subject["build"])
    posed = poses_mod.pose_body(body, subject["poses"][frame])
    rendered = np.array(manifest["joints_3d"][frame]["keypoints"])[:18]
    assert np.allclose(mq.posed_keypoints(body, posed)[:18], rendered, atol=1e-5)  # the very pose rendered
    xy, _ = cameras.project(manifest["views"][view], mq.posture_landmarks(body, posed))
    return img, (P.front_angles if view_name == "front" else P.side_angles)(xy)


@pytest.mark.blender
@pytest.mark.mediapipe
def test_posture_angles_agree_with_the_rigs(renders):
    """Each posture pose from the front (view 0) with each of its profiles (views 1 and 3, facing
    the image's left and right) through the posture job: every angle of the contract against its
    truth from the rig (truth_and_measured). The errors are printed, one line per request."""
    front_errors, side_errors = {}, {}
    for frame, name in enumerate(POSTURE_POSES):
        front, front_truth = truth_and_measured(renders, "front", 0, frame)
        for view in (1, 3):
            side, side_truth = truth_and_measured(renders, "side", view, frame)
            out = execute({"front": b64_png(front), "side": b64_png(side)})
            assert out["status"] == "success" and out["message"] and out["backend"] == "solutions", (name, view, out)
            got = out["data"]
            assert set(got["front_view"]) == set(P.FRONT_ANGLES) and set(got["side_view"]) == set(P.SIDE_ANGLES)
            err = {f"front.{k}": got["front_view"][k] - v for k, v in front_truth.items()}
            assert front_errors.setdefault(name, err) == err  # the same front image, the same answer
            side_errors[name, view] = {f"side.{k}": got["side_view"][k] - v for k, v in side_truth.items()}
            print(f"posture errors (degrees), {name}, front and profile view {view}:",
                  {k: round(v, 2) for k, v in {**err, **side_errors[name, view]}.items()})
    truths = {name: (truth_and_measured(renders, "front", 0, f)[1], truth_and_measured(renders, "side", 1, f)[1])
              for f, name in enumerate(POSTURE_POSES)}
    # the poses tilt as designed
    assert truths["shoulders_tilted_10"][0]["shoulder_tilt"] == pytest.approx(-10, abs=0.5)  # bent to its left
    assert abs(truths["tilted"][0]["shoulder_tilt"]) >= 4 and abs(truths["tilted"][0]["head_tilt"]) >= 10
    assert truths["leaning"][1]["back_tilt"] >= 5 and truths["leaning"][1]["hip_tilt"] >= 5
    assert truths["trunk_lean_15"][1]["back_tilt"] >= 5
    assert truths["head_forward_15"][1]["neck_tilt"] >= truths["shoulders_tilted_10"][1]["neck_tilt"] + 12
    # Per angle over the 5 front and 10 profile renders, both within the 3°: the systematic
    # error (the mean; the neck angle on the shoulder joints and ear centres was +10.5° off here) and
    # the typical one (the median of |error|). Single requests spread further, and the 3° for
    # every request does not hold: MediaPipe answers the two profiles of a symmetric pose
    # (nearly mirror images) up to 4° apart, and on the shoulders-tilted pose's left profile it
    # squeezes the whole skeleton into the upper body (docs/extraction.md, "What the points are").
    table = {k: np.array([e[k] for e in errs.values()]) for errs in (front_errors, side_errors)
             for k in next(iter(errs.values()))}
    summary = {k: {"mean": round(float(v.mean()), 2), "median_abs": round(float(np.median(abs(v))), 2),
                   "max_abs": round(float(abs(v).max()), 2), "over_3": int((abs(v) > 3).sum())} for k, v in table.items()}
    print("posture errors (degrees) over 5 fronts and 10 profiles:", summary)
    assert all(abs(v["mean"]) <= 3 and v["median_abs"] <= 3 for v in summary.values()), summary
    # the job's margin keeps MediaPipe from squeezing a standing profile into the upper body: every
    # request's side body and hip tilt within 3° (without it: 10.0° and 10.8° on that profile)
    assert summary["side.body_tilt"]["max_abs"] <= 3 and summary["side.hip_tilt"]["max_abs"] <= 3, summary
    # and the points come back in the sent image's pixels, the margin taken off
    side, _ = truth_and_measured(renders, "side", 1, 0)
    front, _ = truth_and_measured(renders, "front", 0, 0)
    out = execute({"front": b64_png(front), "side": b64_png(side), "points": True})
    manifest, folder = renders["posture"]
    _, kp = entry_files(manifest, folder, 0, 0)
    ours = np.array(kp["people"][0]["pose_keypoints_2d"]).reshape(18, 3)[:, :2]
    theirs = np.array(out["points"]["front_view"])
    torso = np.linalg.norm(ours[1] - (ours[8] + ours[11]) / 2)
    for joint in (1, 8, 11, 9, 12):  # neck, hips, knees
        assert np.linalg.norm(theirs[joint] - ours[joint]) <= 0.1 * torso, (joint, theirs[joint], ours[joint])


# --- through the real handler under the local v2 server, with the unmodified runpod.Endpoint ------
@pytest.mark.blender
@pytest.mark.mediapipe
def test_both_posture_forms_through_the_v2_server_and_runpod_endpoint(renders, tmp_path, monkeypatch):
    runpod = pytest.importorskip("runpod")
    import requests

    from tests.runpod_v2_server import RunPodV2Server

    front, _ = truth_and_measured(renders, "front", 0, 0)
    side, _ = truth_and_measured(renders, "side", 1, 1)
    f, s = b64_png(front), b64_png(side)
    direct = execute({"front": f, "side": s})["data"]
    with RunPodV2Server("k", env={"POSE_FACTORY_STORAGE_ROOT": str(tmp_path / "store")}, workers=1,
                        worker_log=tmp_path / "worker") as srv:
        monkeypatch.setattr(runpod, "api_key", "k")
        monkeypatch.setattr(runpod, "endpoint_url_base", srv.url_base)
        ep = runpod.Endpoint(srv.endpoint_id)
        # the simplified form: the SDK wraps it in "input" (as the README's curl does by hand)
        out = ep.run({"front": f, "side": s}).output(timeout=120)
        assert out["status"] == "success" and out["data"] == direct
        # the founding documents' second form is already a body with "input"
        out = ep.run({"input": {"front_image": f, "side_image": s}}).output(timeout=120)
        assert out["status"] == "success" and out["data"] == direct
        assert ep.run_sync({"input": {"front_image": f, "side_image": s}}, timeout=120)["data"] == direct
        # a bad input COMPLETES with the contract's error answer as its output
        job = ep.run({"front": f, "side": "not base64!"})
        bad = job.output(timeout=60)
        assert job.status() == "COMPLETED"
        assert bad["status"] == "error" and bad["message"] == "Image validation failed: side image: not valid base64"
        # posted unwrapped as the whole body (the founding document's example): RunPod queues it, its
        # worker gets no input, and the handler says how to wrap it
        r = requests.post(f"{srv.url_base}/{srv.endpoint_id}/runsync", json={"front": f, "side": s},
                          headers={"Authorization": "Bearer k"}, timeout=120)
        st = r.json()
        assert r.status_code == 200 and st["status"] == "FAILED", st
        assert st["error"].startswith("input: the job has none") and '{"input": {"front": b64' in st["error"]


# --- the nodes, through the local worker (MediaPipe never imports in this process) ---------------
@pytest.mark.blender
@pytest.mark.mediapipe
def test_extract_and_posture_nodes_through_the_local_worker(renders, tmp_path, monkeypatch):
    import sys

    import torch

    from pose_factory.jobs import client
    from pose_factory.render import openpose
    from tests.test_nodes import load_pack_like_comfyui

    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    nodes = load_pack_like_comfyui().NODE_CLASS_MAPPINGS
    front, front_truth = truth_and_measured(renders, "front", 0, 0)
    side, _ = truth_and_measured(renders, "side", 1, 1)
    blank = np.full((200, 300, 3), 128, np.uint8)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # any import of it in this process fails
    try:
        images = torch.from_numpy(np.stack([front, np.pad(blank, ((0, 312), (0, 212), (0, 0)), constant_values=128)])
                                  .astype(np.float32) / 255)
        skel, frames, info = nodes["PoseFactoryExtractPose"]().extract(images, False, False)
        assert tuple(skel.shape) == (2, 512, 512, 3) and skel.dtype == torch.float32
        assert len(frames[0]["people"]) == 1 and frames[1]["people"] == []
        assert "backend: solutions" in info and "found in 1 of 2" in info
        # the skeleton is this pack's own drawing of the keypoints; nothing on the blank image
        drawn = np.rint(skel[0].numpy() * 255).astype(np.uint8)
        assert np.array_equal(drawn, openpose.draw_pose(frames[0], hands=False, face=False))
        assert float(skel[1].max()) == 0.0

        poses_out, fit_info = nodes["PoseFactoryPoseFromPhoto"]().make(images[:1])["result"]
        assert len(poses_out) == 1 and poses_out[0]["preset"] == "rest" and poses_out[0]["joints"]
        assert fit_info.startswith("image 0: median residual") and "trunk" in fit_info and "r_knee" in fit_info
        from pose_factory.render import poses as poses_mod
        assert poses_mod.normalize_pose_entry(poses_out[0], "pose") == poses_out[0]  # plugs in like a preset
        with pytest.raises(ValueError, match="no person found in image"):
            nodes["PoseFactoryPoseFromPhoto"]().make(images)

        node = nodes["PoseFactoryPostureAnalysis"]
        out = node().analyse(torch.from_numpy(front[None].astype(np.float32) / 255),
                             torch.from_numpy(side[None].astype(np.float32) / 255))
        assert len(out) == len(node.RETURN_TYPES) == 10
        answer = json.loads(out[0])
        assert answer["status"] == "success" and set(answer) == {"status", "data", "message"}
        assert out[1] == answer["data"]["front_view"]["shoulder_tilt"] and abs(out[1] - front_truth["shoulder_tilt"]) <= 3
        assert out[8] == answer["data"]["side_view"]["hip_tilt"]
        preview = out[9]
        assert tuple(preview.shape) == (1, 512, 1024, 3)
        assert not torch.equal(preview[0, :, :512], torch.from_numpy(front.astype(np.float32) / 255))  # lines drawn
        blank_t = torch.from_numpy(blank[None].astype(np.float32) / 255)
        with pytest.raises(ValueError, match="Could not detect pose landmarks in the front image"):
            node().analyse(blank_t, blank_t)
    finally:
        client.close_clients()


# --- Pose From Photo ----------------------------------------------------------------------------------
FIT_PRESETS = ["standing", "walk_left_step", "waving", "reaching_forward", "a_pose", "t_pose", "hands_on_hips"]
FRONT_AND_SIDE = {"type": "list", "cameras": [{"location": [0, -4.5, 1.0], "look_at": [0, 0, 0.95]},
                                              {"location": [4.5, 0, 1.0], "look_at": [0, 0, 0.95]}]}


def render_poses(store, poses):
    spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "fit-tests",
            "render": {"width": 512, "height": 512, "passes": ["keypoints", "shaded"]}, "cameras": FRONT_AND_SIDE,
            "subjects": [{"type": "mannequin", "poses": poses}]}
    manifest, _ = render.render_batch(spec, store)
    return manifest, store.root / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])


@pytest.mark.blender
@pytest.mark.mediapipe
def test_pose_from_photo_rerendered_from_the_side_matches_the_original(tmp_path):
    """Render a pose, extract it from the front shaded render, fit, re-render from a 90° side view:
    the body keypoints lie within 10% of torso size of the original's (median over joints)."""
    store = storage_mod.LocalStorage(tmp_path)
    manifest, folder = render_poses(store, FIT_PRESETS)
    photos = [b64_png(entry_files(manifest, folder, 0, f)[0]) for f in range(len(FIT_PRESETS))]
    out = execute({"extract": {"images": photos, "fit": True}})
    assert out["found"] == [True] * len(FIT_PRESETS) and len(out["fits"]) == len(FIT_PRESETS)
    fitted, ffolder = render_poses(store, [f["pose"] for f in out["fits"]])  # explicit poses render as they are
    medians = {}
    for f, name in enumerate(FIT_PRESETS):
        ours = all_points(entry_files(manifest, folder, 1, f)[1])
        again = all_points(entry_files(fitted, ffolder, 1, f)[1])
        torso = np.linalg.norm(ours[1] - (ours[8] + ours[11]) / 2)
        medians[name] = float(np.median(np.linalg.norm(again - ours, axis=1)) / torso)
        assert set(out["fits"][f]["residual_deg"]) >= {"trunk", "l_elbow", "r_knee"}
    print("Pose From Photo, side view, median distance / torso:", {k: round(v, 3) for k, v in medians.items()})
    # the issue asks for 3 presets; 6 of these 7 pass (reaching_forward, bent 34° towards the camera, does
    # not: MediaPipe sees little of that depth from the front)
    assert sum(v <= 0.10 for v in medians.values()) >= 5, medians


# --- render validation: a worker option, its PCK in the manifest ------------------------------------
@pytest.mark.blender
@pytest.mark.mediapipe
def test_render_validation_writes_pck_into_the_manifest(tmp_path):
    from pose_factory import settings as settings_mod
    from pose_factory.jobs import client
    from pose_factory.storage import read_manifest

    settings = settings_mod.load_settings(overrides={
        "storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "cache")},
        "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}})
    spec = {"schema_version": "1.0", "kind": "pose_batch",
            "render": {"width": 512, "height": 512, "passes": ["keypoints", "shaded"]},
            "cameras": {"type": "orbit", "views": 2, "elevation": 10, "start_azimuth": -45},
            "subjects": [{"type": "mannequin", "poses": ["standing", "walk_left_step"]}]}
    try:
        with pytest.raises(client.JobFailed, match="input.validate: .*'shaded' and 'keypoints'"):
            client.run_job(dict(spec, render={"width": 256, "height": 256, "passes": ["openpose"]}), project="val",
                           backend="local", settings=settings, env={}, validate=True)
        res = client.run_job(spec, project="val", backend="local", settings=settings, env={}, validate=True)
    finally:
        client.close_clients()
    stored = read_manifest(settings_mod.make_storage(settings, {}), "val", res.batch_id)
    v = stored["validation"]
    assert v["method"] == "mediapipe-pck" and v["backend"] == "solutions" and v["images"] == 4 and v["found"] == 4
    assert v["joints"] >= 40 and v["pck@0.2"] >= v["pck@0.1"] >= 0.85
    assert set(v["per_joint"]) >= {"nose", "neck", "l_wrist", "r_ankle"}
    assert all(j["n"] >= 1 for j in v["per_joint"].values())
    # the oracle: the same PCK from the stored images, counted here
    from pose_factory.extract.detector import Detector
    from pose_factory.extract.validation import image_hits, torso_size

    det, seen_n, hits_n = Detector(), 0, 0
    folder = tmp_path / "store" / storage_mod.batch_prefix("val", res.batch_id)
    for e in stored["entries"]:
        img = imageio.read_png(str(folder / e["files"]["shaded"]["key"]))
        found = det.detect(img)
        seen, hits = image_hits(mediapipe_to_openpose(found.landmarks, 512, 512)[0],
                                json.loads((folder / e["files"]["keypoints"]["key"]).read_text()),
                                torso_size(stored, e["view"], e["frame"]))
        seen_n, hits_n = seen_n + seen.sum(), hits_n + hits[0].sum()
    assert v["pck@0.1"] == round(hits_n / seen_n, 4)


@pytest.mark.blender
@pytest.mark.mediapipe
def test_hands_found_on_a_close_view_go_to_their_own_side(tmp_path):
    """MediaPipe's hand model on a close front view of open hands reaching forward: both hands
    found, each on the subject's own side (left on the image's right), near our exact hand points."""
    store = storage_mod.LocalStorage(tmp_path)
    spec = {"render": {"width": 512, "height": 512, "passes": ["keypoints", "shaded"]},
            "cameras": {"type": "list", "cameras": [{"location": [0, -1.8, 1.3], "look_at": [0, 0, 1.25]}]},
            "subjects": [{"type": "mannequin", "poses": [{"preset": "reaching_forward", "hands": "open"}]}]}
    manifest, _ = render.render_batch(spec, store, project="hands")
    folder = tmp_path / storage_mod.batch_prefix("hands", manifest["batch_id"])
    img, kp = entry_files(manifest, folder, 0, 0)
    out = execute({"extract": {"images": [b64_png(img)], "hands": True}})
    person, ours = out["frames"][0]["people"][0], kp["people"][0]
    for key in ("hand_left_keypoints_2d", "hand_right_keypoints_2d"):
        theirs = np.array(person[key]).reshape(21, 3)
        exact = np.array(ours[key]).reshape(21, 3)
        seen = exact[:, 2] == 1.0
        assert seen.sum() >= 15 and (theirs[:, 2] == 1.0).all(), key
        size = np.linalg.norm(exact[seen, :2].max(0) - exact[seen, :2].min(0))
        med = np.median(np.linalg.norm(theirs[seen, :2] - exact[seen, :2], axis=1))
        print(key, "median distance / hand size:", round(med / size, 3))
        assert med <= 0.15 * size, (key, med, size)
    left_x = np.array(person["hand_left_keypoints_2d"]).reshape(21, 3)[:, 0].mean()
    right_x = np.array(person["hand_right_keypoints_2d"]).reshape(21, 3)[:, 0].mean()
    assert left_x > 256 > right_x  # facing the camera: the subject's left hand on the image's right


@pytest.mark.blender
@pytest.mark.mediapipe
def test_draw_landmarks_script_draws_on_the_frame_or_says_nobody_is_there(tmp_path):
    import subprocess
    import sys

    from pose_factory.render import openpose

    photo, blank = tmp_path / "photo.png", tmp_path / "blank.png"
    rgb = np.full((400, 300, 3), 128, np.uint8)
    imageio.write_png(str(blank), rgb)
    from pathlib import Path

    script = [sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "draw_landmarks.py")]
    proc = subprocess.run(script + [str(blank), str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "no person found" in proc.stderr and not (tmp_path / "o.png").exists()
    # a person: our shaded render as the photo
    store = storage_mod.LocalStorage(tmp_path / "s")
    manifest, _ = render.render_batch({"render": {"width": 320, "height": 400, "passes": ["keypoints", "shaded"]},
                                       "cameras": {"type": "orbit", "views": 1},
                                       "subjects": [{"type": "mannequin", "poses": ["standing"]}]}, store, project="d")
    img, _ = entry_files(manifest, tmp_path / "s" / storage_mod.batch_prefix("d", manifest["batch_id"]), 0, 0)
    imageio.write_png(str(photo), img)
    proc = subprocess.run(script + [str(photo), str(tmp_path / "out.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "of 18 body points (solutions backend" in proc.stdout, proc.stderr[-2000:]
    out = imageio.read_png(str(tmp_path / "out.png"))
    changed = (out != img).any(axis=2)
    assert out.shape == img.shape and changed.sum() > 500  # the skeleton is drawn over the photo
    colours = {tuple(c) for c in out[changed].reshape(-1, 3)}
    assert any(c in colours for c in openpose.BODY_COLORS)  # in the annotator's joint colours
