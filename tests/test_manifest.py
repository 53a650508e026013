"""The batch manifest: keys, build/validate round trip, versioning and refusals (pose_factory/manifest.py)."""
import copy
import hashlib
import json

import numpy as np
import pytest

from pose_factory.render import cameras
from pose_factory import manifest as M
from pose_factory.errors import ManifestError

W, H = 128, 96
SPEC = {"schema_version": "1.0", "kind": "pose_batch", "project": "tests"}  # opaque to the manifest


def file_info(key):
    data = key.encode()
    return {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def make(views=2, frames=3, **over):
    # real camera dicts from cameras.py, as the renderer returns them (numpy arrays included)
    spec = {"render": {"width": W, "height": H},
            "cameras": {"type": "orbit", "views": views, "elevation": 10.0, "start_azimuth": 0.0, "distance": 4.0,
                        "focal_length": 50.0, "orthographic": False, "ortho_scale": "auto", "roll": 0.0,
                        "sensor_width": 36.0, "margin": 0.08}}
    cams = cameras.build_cameras(spec, np.array([[0, 0, 0], [0, 0, 1.8]], float))
    entries = [{"view": v, "frame": f, "files": {p: file_info(M.image_key(p, v, f)) for p in ("openpose", "depth")}
                | {"keypoints": file_info(M.image_key("keypoints", v, f, "json"))}}
               for f in range(frames) for v in range(views)]
    kw = dict(batch_id="0123456789abcdef", project="tests", spec=SPEC, recipe_version=1, worker_version="0.1.0",
              blender_version="5.0.1", width=W, height=H, views=cams, frames=frames, entries=entries,
              joints_3d=[{"joints": {"neck": np.array([0.0, 0.0, 1.5])}} for _ in range(frames)],
              depth_range={"near": 3.0, "far": 5.0}, timings={"total": 1.5}, cost={"estimate_usd": 0.0})
    kw.update(over)
    return M.build_manifest(**kw)


def refused(m, field, *fragments):
    with pytest.raises(ManifestError) as info:
        M.validate_manifest(m)
    assert info.value.field == field, str(info.value)
    for f in fragments:
        assert f in str(info.value), str(info.value)


def test_image_key():
    assert M.image_key("openpose", 0, 0) == "openpose/v00_f0000.png"
    assert M.image_key("keypoints", 3, 12, "json") == "keypoints/v03_f0012.json"
    assert M.image_key("normal_opengl", 63, 255) == "normal_opengl/v63_f0255.png"
    for bad in (("../x", 0, 0), ("Depth", 0, 0), ("depth", 100, 0), ("depth", 0, 0, "jpg")):
        with pytest.raises(ManifestError):
            M.image_key(*bad)


def test_round_trip_through_json():
    m = make()
    back = M.validate_manifest(json.loads(json.dumps(m)))
    assert back == m
    assert m["schema_version"] == M.MANIFEST_SCHEMA_VERSION and m["created_at"].endswith("+00:00")
    assert len(m["entries"]) == 6 and m["frames"] == 3 and len(m["views"]) == 2
    v = m["views"][1]
    assert v["index"] == 1 and set(v["intrinsics"]) >= {"fx", "fy", "cx", "cy", "width", "height", "orthographic"}
    assert np.array(v["extrinsics"]["world_to_camera"]).shape == (4, 4)
    assert m["joints_3d"][0]["joints"]["neck"] == [0.0, 0.0, 1.5]  # numpy became plain JSON


def test_views_still_project_like_cameras():
    # loaders and tests call cameras.project on a manifest view
    m = json.loads(json.dumps(make()))
    xy, depth = cameras.project(m["views"][0], np.array([[0.0, 0.0, 0.9]]))
    assert np.isfinite(xy).all() and depth[0] > 0


def test_newer_minor_version_and_extra_keys_accepted():
    m = make()
    m["schema_version"] = "1.7"
    m["something_new"] = {"x": 1}  # a 1.x writer may add keys
    assert M.validate_manifest(m) is m


@pytest.mark.parametrize("version", ["2.0", "0.9", "", None, 1])
def test_unknown_major_version_refused(version):
    m = make()
    m["schema_version"] = version
    refused(m, "schema_version", "1.x")


@pytest.mark.parametrize("key", ["../openpose/v00_f0000.png", "/openpose/v00_f0000.png", "openpose\\v00_f0000.png",
                                 "openpose/../v00_f0000.png", "openpose/v00_f0000.png/..", "a/b/v00_f0000.png",
                                 "openpose/v00_f0000.sh", "OpenPose/v00_f0000.png", "openpose/v0_f0.png", None])
def test_unsafe_file_keys_refused(key):
    m = make()
    m["entries"][0]["files"]["openpose"]["key"] = key
    refused(m, "entries[0].files.openpose.key")


def test_key_must_match_its_entry():
    m = make()
    m["entries"][0]["files"]["openpose"]["key"] = "openpose/v01_f0000.png"  # view 1's image in view 0
    refused(m, "entries[0].files.openpose.key", "v00_f0000")
    m = make()
    m["entries"][0]["files"]["openpose"]["key"] = "depth/v00_f0000.png"
    refused(m, "entries[0].files.openpose.key")


def test_entries_cover_every_view_and_frame_once():
    m = make()
    del m["entries"][4]
    refused(m, "entries", "no entry for (view 0, frame 2)")
    m = make()
    m["entries"][1] = copy.deepcopy(m["entries"][0])
    refused(m, "entries[1]", "listed twice")
    m = make()
    m["entries"][0]["frame"] = 3
    refused(m, "entries[0].frame", "0 to 2")


@pytest.mark.parametrize("path, value, field", [
    (("batch_id",), "../x", "batch_id"),
    (("project",), "Bad Name", "project"),
    (("spec",), "x", "spec"),
    (("recipe_version",), True, "recipe_version"),
    (("width",), 0, "width"),
    (("frames",), "3", "frames"),
    (("views",), [], "views"),
    (("views", 1, "index"), 0, "views[1].index"),
    (("views", 0, "intrinsics", "fx"), "a", "views[0].intrinsics.fx"),
    (("views", 0, "extrinsics", "world_to_camera"), [[1, 0, 0]], "views[0].extrinsics.world_to_camera"),
    (("views", 0, "extrinsics", "location"), [0, 0], "views[0].extrinsics.location"),
    (("entries", 2, "files", "depth", "sha256"), "abc", "entries[2].files.depth.sha256"),
    (("entries", 2, "files", "depth", "size"), -1, "entries[2].files.depth.size"),
    (("entries", 2, "files"), {}, "entries[2].files"),
    (("joints_3d",), [{}], "joints_3d"),
    (("depth_range",), {"near": 5.0, "far": 3.0}, "depth_range"),
    (("timings",), {"total": "slow"}, "timings"),
    (("cost",), None, "cost"),
])
def test_bad_fields_named(path, value, field):
    m = make()
    node = m
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    refused(m, field)


def test_optional_parts_may_be_null():
    m = make(joints_3d=None, depth_range=None)
    assert m["joints_3d"] is None and m["depth_range"] is None


def test_not_a_dict():
    refused([], "manifest")


def test_several_people_and_rig_reports():
    """Issue 22: joints_3d[f].people (2+ people) and rig_reports (a rig subject) are accepted and
    written only when given; a manifest without them (every one before) still reads."""
    plain = make()
    assert "rig_reports" not in plain
    j3d = [{"joints": {"neck": [0.0, 0.0, 1.5]}, "people": [{"joints": {"neck": [0.0, 0.0, 1.5]}},
                                                             {"joints": {"neck": [1.0, 0.0, 1.4]}}]}] * 3
    report = {"file": "hero.fbx", "format": "fbx", "joints": {"found": ["neck"], "estimated": [], "missing": []}}
    m = make(joints_3d=j3d, rig_reports={"1": report})
    assert m["rig_reports"] == {"1": report} and m["joints_3d"][0]["people"][1]["joints"]["neck"] == [1.0, 0.0, 1.4]
    assert M.validate_manifest(json.loads(json.dumps(m))) == m
    bad = copy.deepcopy(m)
    bad["joints_3d"][2]["people"] = {"0": {}}
    refused(bad, "joints_3d[2].people", "a list of objects")
    bad = copy.deepcopy(m)
    bad["rig_reports"] = {"first": report}
    refused(bad, "rig_reports", "person index")
