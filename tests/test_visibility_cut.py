"""Extract Pose's visibility cut (issue 23): the documented choice reproduced on our own renders
(real bpy, real MediaPipe), the widget's and the request fields' validation, and the points below
the cut kept in our own field of POSE_KEYPOINT."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from pose_factory.errors import SpecError
from pose_factory.extract import batch
from pose_factory.extract.mapping import MIN_VISIBILITY, check_visibility_cut, keypoint_frame, mediapipe_to_openpose
from pose_factory.extract.validation import cut_table
from pose_factory.render import openpose

ROOT = Path(__file__).resolve().parent.parent
BAD_CUTS = [-0.01, 1.01, True, "0.3", None, float("nan")]
# docs/extraction.md, "The visibility cut": the quick set's all-images rows (cut: PCK@0.2, false positives / reported)
DOCUMENTED_QUICK = {0.3: (0.930, 0.183), 0.5: (0.909, 0.174)}


def bench():
    spec = importlib.util.spec_from_file_location("bench_visibility_cut", ROOT / "bench" / "bench_visibility_cut.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_visibility_cut", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.blender
@pytest.mark.mediapipe
def test_the_chosen_cut_beats_0_5_on_our_renders_as_documented(tmp_path):
    """The quick set (presets from front, side and back; two people one covering the other; a board
    in front of the legs): the chosen cut finds more of the truly visible points (PCK@0.2) than 0.5,
    at most one point more of its reported points truly hidden, and no fewer hits less false
    positives; both rows as docs/extraction.md gives them."""
    from pose_factory.extract.detector import Detector

    b = bench()
    images = b.render_sets(tmp_path, quick=True)
    assert {k: len(v) for k, v in images.items()} == {"views": 12, "pair": 4, "prop": 4}
    det = Detector()
    cuts = (MIN_VISIBILITY, 0.5)
    rows = {r["cut"]: r for r in cut_table(b.measure(images, det, cuts)["all"], cuts)}
    det.close()
    chosen, old = rows[MIN_VISIBILITY], rows[0.5]
    assert chosen["pck@0.2"] > old["pck@0.2"], rows
    assert chosen["fp_rate"] <= old["fp_rate"] + 0.01, rows
    assert chosen["net"] >= old["net"], rows
    for cut, (pck, fp) in DOCUMENTED_QUICK.items():
        assert abs(rows[cut]["pck@0.2"] - pck) <= 0.02 and abs(rows[cut]["fp_rate"] - fp) <= 0.02, (cut, rows[cut])

    # the worker's inline extract (what the nodes send) applies the cut it is given and keeps the
    # dropped points: a back view, where MediaPipe is unsure of several points
    import asyncio
    import base64
    import io

    from PIL import Image
    from pod_worker.request import execute

    def run(img, cut):
        buf = io.BytesIO()
        Image.fromarray(img[:, :, :3]).save(buf, format="PNG")
        job = {"extract": {"images": [base64.b64encode(buf.getvalue()).decode()], "visibility_cut": cut}}
        return asyncio.run(execute(job, lambda e: None))["frames"][0]["people"][0]

    def scores(person):
        return np.array(person[openpose.OWN_KEY]["dropped"]["pose_keypoints_2d"]).reshape(18, 3)[:, 2]

    # the first image with points on both sides of the cut (a covered or turned-away person)
    img = next(img for img, _, _ in images["views"] + images["pair"] + images["prop"]
               if (scores(run(img, 1.0)) < MIN_VISIBILITY).any())
    frames = {cut: run(img, cut) for cut in (0.0, MIN_VISIBILITY, 1.0)}
    assert openpose.OWN_KEY not in frames[0.0]
    assert not any(frames[1.0]["pose_keypoints_2d"])  # every score is below 1: all dropped, all kept
    everything = np.array(frames[1.0][openpose.OWN_KEY]["dropped"]["pose_keypoints_2d"]).reshape(18, 3)
    assert np.allclose(everything[:, :2], np.array(frames[0.0]["pose_keypoints_2d"]).reshape(18, 3)[:, :2])
    chosen = np.array(frames[MIN_VISIBILITY]["pose_keypoints_2d"]).reshape(18, 3)
    below = everything[:, 2] < MIN_VISIBILITY
    assert below.any() and not below.all(), everything[:, 2]
    assert not chosen[below].any() and (chosen[~below, 2] == 1).all()


def test_the_documented_cut_is_the_default_everywhere():
    doc = (ROOT / "docs" / "extraction.md").read_text()
    assert f"The cut is **{MIN_VISIBILITY:g}**" in doc.replace("\n", " ")
    from nodes.extract_nodes import PoseFactoryExtractPose, PoseFactoryPoseFromPhoto

    for node in (PoseFactoryExtractPose, PoseFactoryPoseFromPhoto):
        kind, opts = node.INPUT_TYPES()["optional"]["visibility_cut"]
        assert kind == "FLOAT" and opts["default"] == MIN_VISIBILITY and (opts["min"], opts["max"]) == (0.0, 1.0)
    assert batch.normalize({})["openpose"]["visibility_cut"] == MIN_VISIBILITY


@pytest.mark.parametrize("bad", BAD_CUTS)
def test_a_bad_cut_is_refused_naming_the_field_everywhere(bad):
    with pytest.raises(ValueError, match=r"^visibility_cut: got .*allowed: a number from 0 to 1"):
        check_visibility_cut(bad)
    with pytest.raises(SpecError) as info:
        batch.normalize({"openpose": {"visibility_cut": bad}})
    assert info.value.field == "openpose.visibility_cut" and "a number from 0 to 1" in str(info.value)
    from pod_worker.jobs.extract import ExtractInputError, parse

    with pytest.raises(ExtractInputError, match=r"^input\.extract\.visibility_cut: got .*from 0 to 1"):
        parse({"extract": {"images": ["x"], "visibility_cut": bad}})
    from pod_worker.request import InputError, parse_input

    with pytest.raises(InputError, match=r"^input\.spec\.openpose\.visibility_cut: got .*a number from 0 to 1"):
        parse_input({"spec": {"kind": "extract", "openpose": {"visibility_cut": bad}}, "project": "p",
                     "images": ["https://example.com/a.png"]})
    from nodes.extract_nodes import PoseFactoryExtractPose, PoseFactoryPoseFromPhoto

    image = np.zeros((1, 256, 256, 3), np.float32)
    with pytest.raises(ValueError, match=r"^Extract Pose: visibility_cut: got"):
        PoseFactoryExtractPose().extract(image, False, False, visibility_cut=bad)
    with pytest.raises(ValueError, match=r"^Pose From Photo: visibility_cut: got"):
        PoseFactoryPoseFromPhoto().make(image, visibility_cut=bad)


def test_good_cuts_pass_and_change_the_extract_batch_id():
    assert check_visibility_cut(0) == 0.0 and check_visibility_cut(1) == 1.0
    assert parse_cut(0.25) == 0.25
    ids = {batch.batch_id(batch.normalize({"openpose": {"visibility_cut": c}}), "solutions:m", [])
           for c in (0.2, 0.3, 0.5)}
    assert len(ids) == 3


def parse_cut(cut):
    from pod_worker.jobs.extract import parse

    return parse({"extract": {"images": ["x"], "visibility_cut": cut}})["visibility_cut"]


def landmarks():
    """33 MediaPipe landmarks in a grid, visibility from 0 to 0.96 (a pair's point takes its lower)."""
    lm = np.zeros((33, 4))
    lm[:, 0], lm[:, 1] = np.linspace(0.1, 0.9, 33), np.linspace(0.9, 0.1, 33)
    lm[:, 3] = np.arange(33) * 0.03
    return lm


@pytest.mark.parametrize("cut", [0.0, 0.3, 0.5, 0.95])
def test_points_below_the_cut_are_not_found_but_kept_with_their_score(cut):
    lm = landmarks()
    xy, _ = mediapipe_to_openpose(lm, 640, 480, 0.0)
    frame = keypoint_frame(lm, 640, 480, min_visibility=cut)
    openpose.validate_pose_keypoint(frame)
    person = frame["people"][0]
    public = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    # each OpenPose point's score, from MEDIAPIPE_TO_OPENPOSE by hand: the neck is (11, 12), the lower one 11
    score = np.array([0, 11, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]) * 0.03
    below = score < cut
    assert np.array_equal(public[~below, 2], np.ones((~below).sum())) and not public[below].any()
    assert np.allclose(public[~below, :2], xy[~below])
    if not below.any():
        assert openpose.OWN_KEY not in person
        return
    kept = np.array(person[openpose.OWN_KEY]["dropped"]["pose_keypoints_2d"]).reshape(18, 3)
    assert np.allclose(kept[below, :2], xy[below]) and np.allclose(kept[below, 2], score[below], atol=1e-4)
    assert not kept[~below].any()
    # never drawn: what is drawn is the public points only, in every occluded mode
    public_only = {k: v for k, v in person.items() if k != openpose.OWN_KEY}
    for mode in openpose.OCCLUDED_MODES:
        assert np.array_equal(openpose.draw_pose(frame, occluded=mode),
                              openpose.draw_pose({**frame, "people": [public_only]}, occluded=mode))


def test_a_bad_dropped_field_is_refused():
    frame = keypoint_frame(landmarks(), 640, 480, min_visibility=0.5)
    frame["people"][0][openpose.OWN_KEY]["dropped"]["pose_keypoints_2d"] = [1.0, 2.0]
    with pytest.raises(ValueError, match=r"pose_factory\.dropped\.pose_keypoints_2d must have a multiple of 3"):
        openpose.validate_pose_keypoint(frame)


def test_a_photo_fit_is_reserved_above_the_slowest_fit_seen():
    """Issue 23: Pose From Photo's fit took 3.9 s a person on the development machine against the
    3.0 s the budget's estimate assumed (bench/bench_fit.py measures it); the reservation of an
    inline extract with a fit now covers that, per image."""
    from pose_factory.jobs.client import inline_seconds

    images = {"images": ["a", "b"]}
    extra = inline_seconds({"extract": dict(images, fit=True)}) - inline_seconds({"extract": images})
    assert extra == 2 * batch.FIT_S and batch.FIT_S >= 3.9


def test_the_fit_weighs_image_points_below_the_cut_low():
    """Pose From Photo's visibility_cut: each fitted image point (fit.LANDMARK) weighs 1, or
    DROPPED_WEIGHT when its MediaPipe visibility (a pair's lower one) is below the cut; no cut: all 1."""
    from pose_factory.extract import fit

    lm = landmarks()
    vis = np.array([min(lm[i, 3] for i in (src if isinstance(src, tuple) else (src,)))
                    for src in fit.LANDMARK.values()])
    for cut in (0.0, 0.5, 0.9):
        want = np.where(vis >= cut, 1.0, fit.DROPPED_WEIGHT)
        assert np.array_equal(fit.image_weights(lm, cut), want)
    assert (fit.image_weights(lm, 0.5) < 1).sum() == (vis < 0.5).sum() > 0
    assert np.array_equal(fit.image_weights(lm, None), np.ones(len(fit.LANDMARK)))


def test_the_fits_fast_rotations_are_the_rigs_to_the_last_bit():
    """Pose From Photo's fit makes each DOF's matrices once (fit._local_rotation, issue 23's fit
    time): the same numbers as rig.local_rotation, so the fit's results are unchanged."""
    from pose_factory.extract import fit
    from pose_factory.render import rig

    rs = np.random.RandomState(7)
    for _ in range(100):
        angles = {}
        for j, d in fit.FIT_DOFS:
            angles.setdefault(j, {})[d] = float(rs.uniform(-90, 90)) if rs.rand() > 0.2 else 0.0
        for n in fit.BODY:
            own = angles.get(n, {})
            assert np.array_equal(fit._local_rotation(n, own), rig.local_rotation(n, own)), n
    posed = rig.forward_kinematics(rig.rest_positions(rig.REFERENCE_HEIGHT), angles)
    pts = fit._rig_points(angles)
    for i, n in enumerate(rig.JOINT_NAMES):
        if n in fit.BODY:
            assert np.allclose(pts[n], posed.positions[i], atol=1e-12), n
