"""The 3D viewer's core side (pose_factory/viewer, its routes) and the cameras it feeds: Camera List
and Camera From Load 3D. Core's LOAD3D_CAMERA is checked against three.js itself (the vendored
bundle run by node), an oracle outside our code."""
import asyncio
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nodes import routes as R
from nodes import spec_nodes as S
from pose_factory.render import cameras as cameras_mod
from pose_factory.render import mannequin as mq
from pose_factory.render import poses as poses_mod
from pose_factory.render import rig
from pose_factory import spec as spec_mod
from pose_factory import viewer
from pose_factory.errors import SpecError
from pose_factory.viewer.load3d import Y_UP_TO_Z_UP, camera_from_load3d

ROOT = Path(__file__).resolve().parents[1]
THREE = ROOT / "web" / "js" / "vendor" / "three.module.min.js"


# --- the scene the viewer shows is the worker's -----------------------------------------------------
def test_scene_is_the_cores_pose_and_cameras():
    poses = ["a_pose", {"preset": "waving", "joints": {"l_elbow": {"flex": 45}}}]
    cams = {"type": "orbit", "views": 3, "elevation": 20}
    got = viewer.scene({"subject": {"height": 1.8, "build": "slim"}, "poses": poses, "frame": 1,
                        "cameras": cams, "render": {"width": 640, "height": 480}})
    spec = spec_mod.normalize_spec({"subjects": [{"type": "mannequin", "height": 1.8, "build": "slim", "poses": poses}],
                                    "cameras": cams, "render": {"width": 640, "height": 480}})
    body = mq.build(1.8, "slim")
    posed = [poses_mod.pose_body(body, e) for e in spec["subjects"][0]["poses"]]
    # the worker's own framing (blender_scripts/render_batch.py)
    want = cameras_mod.build_cameras(spec, cameras_mod.framing_points([mq.posed_vertices(body, p) for p in posed]))
    assert got["pose"] == spec["subjects"][0]["poses"][1]
    assert np.allclose(np.reshape(got["positions"], (-1, 3)), posed[1].positions, atol=1e-5)
    assert np.allclose(np.reshape(got["keypoints"], (-1, 3)), mq.posed_keypoints(body, posed[1]), atol=1e-5)
    assert [c["location"] for c in got["cameras"]] == [c["location"] for c in want]
    assert [c["intrinsics"] for c in got["cameras"]] == [c["intrinsics"] for c in want]

    # what the browser does with it: each rest vertex moved rigidly with its joint
    m = viewer.mesh(1.8, "slim")
    v = np.reshape(m["vertices"], (-1, 3))
    j = np.array(m["vertex_joint"])
    rest = np.reshape(m["rest"], (-1, 3))
    rot = np.reshape(got["rotations"], (-1, 3, 3))
    pos = np.reshape(got["positions"], (-1, 3))
    skinned = np.einsum("nij,nj->ni", rot[j], v - rest[j]) + pos[j]
    assert np.abs(skinned - mq.posed_vertices(body, posed[1])).max() < 1e-4
    assert len(m["triangles"]) == 3 * len(body.all_triangles()) == 3 * len(m["triangle_part"])


def test_limits_are_the_rigs():
    table = viewer.limits()
    assert [j["name"] for j in table["joints"]] == list(poses_mod.POSABLE_JOINTS)
    elbow = next(j for j in table["joints"] if j["name"] == "l_elbow")
    assert elbow["mirror"] == "r_elbow"
    assert [(d["name"], d["lo"], d["hi"]) for d in elbow["dofs"]] == [(d.name, d.lo, d.hi) for d in rig.JOINTS["l_elbow"].dofs]
    assert table["presets"] == list(poses_mod.PRESETS)


@pytest.mark.parametrize("body, field", [
    ({"poses": [{"preset": "rest", "joints": {"l_elbow": {"flex": 200}}}]}, "allowed -5..150 (l_elbow flex"),
    ({"subject": {"height": 9}}, "height"),
    ({"frame": 3}, "frame"),
    ({"colour": 1}, "unknown key(s) ['colour']"),
    ({"render": {"width": 10}}, "render.width"),
    ([], "body"),
])
def test_scene_refuses_bad_input_naming_the_field(body, field):
    with pytest.raises(SpecError) as e:
        viewer.scene(body)
    assert field in str(e.value)


POSES = {"class_type": "PoseFactoryPoseSequence", "inputs": {"poses": "t_pose\nwaving mirror"}}
ORBIT = {"class_type": "PoseFactoryCameraOrbit", "inputs": {
    "views": 2, "elevation": 0, "distance": 0, "focal_length": 50, "orthographic": False, "roll": 0, "start_azimuth": 0}}


def test_scene_of_graph_fragments_is_what_the_nodes_make():
    """The viewer sends the graph's spec nodes; the nodes' own functions make the pieces."""
    listed = {"class_type": "PoseFactoryPoseList", "inputs": {
        "poses_1": POSES, "poses_2": {"class_type": "PoseFactoryPoseFromJSON",
                                      "inputs": {"joints": '{"l_elbow": {"flex": 45}}', "preset": "a_pose"}}}}
    got = R.viewer_scene({}, {"poses": listed, "cameras": ORBIT, "frame": 2, "width": 256, "height": 256})
    (poses,) = S.PoseFactoryPoseList().join(S.PoseFactoryPoseSequence().make("t_pose\nwaving mirror")[0],
                                            poses_2=S.PoseFactoryPoseFromJSON().make('{"l_elbow": {"flex": 45}}', "a_pose")[0])
    (cams,) = S.PoseFactoryCameraOrbit().make(2, 0, 0, 50, False, 0, 0)
    want = viewer.scene({"poses": poses, "cameras": cams, "frame": 2, "render": {"width": 256, "height": 256}})
    assert got == want and got["angles"]["l_elbow"]["flex"] == 45
    budget = {"class_type": "PoseFactoryPoseList", "inputs": {f"poses_{i}": POSES for i in range(1, 65)}}
    with pytest.raises(R.RouteError, match="more than 80 nodes"):
        R.viewer_scene({}, {"poses": {"class_type": "PoseFactoryPoseList", "inputs": {"poses_1": budget, "poses_2": budget}}})
    with pytest.raises(R.RouteError, match=r"poses.poses_1.x: unknown input of PoseFactoryPoseSequence, allowed: poses"):
        R.viewer_scene({}, {"poses": {"class_type": "PoseFactoryPoseList", "inputs": {
            "poses_1": {"class_type": "PoseFactoryPoseSequence", "inputs": {"poses": "rest", "x": 1}}}}})


def test_pieces_made_only_when_the_prompt_runs_show_the_default_and_say_so():
    """A Motion Clip, a photo fit or a mesh job's cameras need the worker: the viewer shows the default
    for that piece and a note, never a 400 (a console error in the page); an unknown type stays a 400."""
    clip = {"class_type": "PoseFactoryMotionClip", "inputs": {"clip": "walk.bvh"}}
    mv = {"class_type": "PoseFactoryMultiViewPrompts", "inputs": {"subject": "x", "views": "8"}}
    got = R.viewer_scene({}, {"poses": {"class_type": "PoseFactoryPoseList", "inputs": {"poses_1": clip}},
                              "cameras": mv})
    assert len(got["notes"]) == 2 and all("known when the prompt runs" in n for n in got["notes"])
    assert got["notes"][0].startswith("poses from Motion Clip") and got["notes"][1].startswith("cameras from Multi-View")
    assert {k: v for k, v in got.items() if k != "notes"} == viewer.scene({})
    with pytest.raises(R.RouteError, match="allowed: a node that makes POSE_FACTORY_POSES"):
        R.viewer_scene({}, {"poses": {"class_type": "LoadImage", "inputs": {}}})


def test_viewer_routes():
    pytest.importorskip("aiohttp")
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    routes = web.RouteTableDef()
    R.register(routes, context=lambda need_storage: ({}, None))
    app = web.Application()
    app.add_routes(routes)

    async def scenario(c):
        r = await c.get("/pose_factory/viewer/mesh?height=1.6&build=heavy")
        mesh = await r.json()
        assert r.status == 200 and mesh["height"] == 1.6 and mesh["build"] == "heavy"
        r = await c.get("/pose_factory/viewer/mesh?height=tall")
        assert r.status == 400 and "height" in (await r.json())["error"]
        r = await c.get("/pose_factory/viewer/limits")
        assert r.status == 200 and (await r.json())["joints"][0]["name"] == "root"
        r = await c.post("/pose_factory/viewer/scene", json={"poses": POSES, "cameras": ORBIT, "width": 640})
        scene = await r.json()
        assert r.status == 200 and len(scene["cameras"]) == 2 and len(scene["keypoints"]) == 3 * mq.N_KEYPOINTS
        assert scene["frames"] == 2 and scene["pose"]["preset"] == "t_pose"
        assert scene["render"] == {"width": 640, "height": 512}
        bad = {"class_type": "PoseFactoryPoseFromJSON", "inputs": {"joints": '{"l_knee": {"flex": 170}}', "preset": "rest"}}
        r = await c.post("/pose_factory/viewer/scene", json={"poses": bad})
        assert r.status == 400 and "allowed -5..155 (l_knee flex" in (await r.json())["error"]
        r = await c.post("/pose_factory/viewer/scene", json={"poses": {"class_type": "LoadImage", "inputs": {}}})
        assert r.status == 400 and "spec nodes only" in (await r.json())["error"]
        r = await c.post("/pose_factory/viewer/scene", data=b"{")
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
        r = await c.post("/pose_factory/viewer/scene", data=b"[" + b"0," * R.VIEWER_MAX_BODY + b"0]")
        assert r.status == 413

    async def run():
        async with TestClient(TestServer(app)) as c:
            await scenario(c)

    asyncio.run(run())


# --- LOAD3D_CAMERA -> our camera, against three.js itself ----------------------------------------------
THREE_SCRIPT = r"""
import * as T from %s;
const cases = JSON.parse(process.argv[2]);
const out = cases.map((c) => {
  let cam;
  if (c.type === "perspective") cam = new T.PerspectiveCamera(c.fov, c.width / c.height, 0.01, 100);
  else cam = new T.OrthographicCamera(c.frustum.left, c.frustum.right, c.frustum.top, c.frustum.bottom, 0.01, 100);
  cam.zoom = c.zoom;
  cam.updateProjectionMatrix();
  cam.position.set(...c.position);
  cam.lookAt(...c.target);
  if (c.roll) cam.rotateZ((c.roll * Math.PI) / 180);
  cam.updateMatrixWorld();
  const px = c.points.map((p) => {
    const v = new T.Vector3(...p).project(cam);
    return [((v.x + 1) / 2) * c.width - 0.5, ((1 - v.y) / 2) * c.height - 0.5];
  });
  const q = cam.quaternion;
  return { px, quaternion: { x: q.x, y: q.y, z: q.z, w: q.w } };
});
console.log(JSON.stringify(out));
"""


def _three(cases, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (to run three.js) is not installed")
    script = tmp_path / "project.mjs"
    script.write_text(THREE_SCRIPT % json.dumps(THREE.as_uri()))
    done = subprocess.run([node, str(script), json.dumps(cases)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _xyz(v):
    return {"x": v[0], "y": v[1], "z": v[2]}


LOAD3D_CASES = [  # three.js cameras (Y up): a zoomed landscape one, a rolled portrait one, an off-centre orthographic one
    dict(type="perspective", fov=40, zoom=1.3, width=640, height=480, position=[1.5, 1.6, 2.5], target=[0, 1.0, 0]),
    dict(type="perspective", fov=28, zoom=1.0, width=384, height=512, position=[-2.0, 0.8, -3.0], target=[0.1, 0.9, 0],
         roll=15, quaternion=True),
    dict(type="orthographic", zoom=1.5, width=512, height=768, position=[0, 1.2, 6], target=[0, 1.0, 0],
         frustum={"left": -0.9, "right": 1.1, "top": 1.6, "bottom": -1.4}),
]


def _converted(c, three) -> dict:
    """The case as core's camera_info (the quaternion three.js computed, where the case has one),
    through the Camera From Load 3D node: our listed camera."""
    info = {"position": _xyz(c["position"]), "target": _xyz(c["target"]), "zoom": c["zoom"], "cameraType": c["type"]}
    if c["type"] == "perspective":
        info.update(fov=c["fov"], aspect=c["width"] / c["height"])
    else:
        info["frustum"] = c["frustum"]
    if c.get("quaternion"):
        info["quaternion"] = three["quaternion"]
    (cam,) = S.PoseFactoryCameraFromLoad3D().make(info, c["width"], c["height"])[0]["cameras"]
    return cam


def _three_px(points_z_up, tmp_path):
    """three.js's pixels (and quaternions) of each LOAD3D_CASES camera for these points (our Z-up world)."""
    y_up = np.asarray(points_z_up) @ Y_UP_TO_Z_UP  # our (x, y, z) -> three.js (x, z, -y)
    return _three([dict(c, points=y_up.tolist()) for c in LOAD3D_CASES], tmp_path)


def test_load3d_camera_projects_as_three_js(tmp_path):
    body = mq.build()
    points = mq.posed_keypoints(body, poses_mod.pose_body(body, "waving"))[:60]  # body and hands, metres, Z up
    assert np.allclose((points @ Y_UP_TO_Z_UP) @ Y_UP_TO_Z_UP.T, points)
    got = _three_px(points, tmp_path)
    for c, three in zip(LOAD3D_CASES, got):
        (ours,) = cameras_mod.explicit([_converted(c, three)], c["width"], c["height"])
        xy, depth = cameras_mod.project(ours, points)
        assert (depth > 0).all()
        err = np.abs(xy - np.array(three["px"])).max()
        assert err < 0.5, (c["type"], err)
    # the rolled camera really carries a roll, recovered from the quaternion
    assert math.isclose(_converted(LOAD3D_CASES[1], got[1])["roll"], 15, abs_tol=1e-6)


@pytest.mark.blender
def test_load3d_camera_renders_in_blender_as_three_js_draws(blender, tmp_path):
    """End to end: a camera framed in three.js, converted by Camera From Load 3D and rendered by
    Blender, puts small emissive markers at the joints of Blender's own posed armature on the pixels
    three.js projects them to (intensity centroids within 0.5 px)."""
    quats = _three_px(np.zeros((0, 3)), tmp_path)
    configs = [dict(_converted(c, q), size=[c["width"], c["height"]]) for c, q in zip(LOAD3D_CASES, quats)]
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    out = tmp_path / "markers.json"
    blender("markers.py", out, tmp_path / "m.png", tmp_path / "configs.json")
    rows = json.loads(out.read_text())
    world = [r["world"] for r in rows if r["config"] == configs[0]]
    three = _three_px(world, tmp_path)
    errors = []
    for k, (c, cfg) in enumerate(zip(LOAD3D_CASES, configs)):
        found = [r["found"] for r in rows if r["config"] == cfg]
        inside = [i for i, (x, y) in enumerate(three[k]["px"])  # a marker cut by the frame edge is off
                  if 5 <= x <= c["width"] - 6 and 5 <= y <= c["height"] - 6]
        assert len(inside) >= 15 and all(found[i] is not None for i in inside), (cfg, inside)
        errors.append(max(math.dist(found[i], three[k]["px"][i]) for i in inside))
    assert max(errors) <= 0.5, f"worst marker error {max(errors):.3f} px per camera {errors}"


def test_load3d_camera_by_hand():
    """Without three.js: a camera 3 m in front of the subject (three.js +Z is the model's front,
    our -Y), looking level; fov 35 vertical at 512 x 512: fy = 256 / tan(17.5 deg)."""
    cam = camera_from_load3d({"position": _xyz([0, 1, 3]), "target": _xyz([0, 1, 0]), "zoom": 1,
                              "cameraType": "perspective"}, 512, 512)
    assert cam["location"] == [0.0, -3.0, 1.0] and cam["look_at"] == [0.0, 0.0, 1.0] and cam["roll"] == 0
    (ours,) = cameras_mod.explicit([cam], 512, 512)
    xy, _ = cameras_mod.project(ours, [[0.1, 0.0, 1.2]])  # 0.1 m to the subject's left, 0.2 m up
    f = 256 / math.tan(math.radians(17.5))
    assert np.allclose(xy[0], [255.5 + f * 0.1 / 3, 255.5 - f * 0.2 / 3], atol=1e-6)


@pytest.mark.parametrize("info, message", [
    ({"position": {"x": 0, "y": 1}, "target": _xyz([0, 0, 0])}, "camera_info position: got"),
    ({"position": _xyz([0, 1, 3]), "target": _xyz([0, 1, 3])}, "the camera's own position"),
    ({"position": _xyz([0, 1, 3]), "target": _xyz([0, 0, 0]), "cameraType": "fisheye"}, "perspective or orthographic"),
    ({"position": _xyz([0, 1, 3]), "target": _xyz([0, 0, 0]), "zoom": 0}, "zoom: got 0"),
    ({"position": _xyz([0, 1, 3]), "target": _xyz([0, 0, 0]), "cameraType": "orthographic"}, "needs its frustum"),
    ({"position": _xyz([0, 1, 3]), "target": _xyz([0, 0, 0]), "fov": 0.5}, "focal_length"),
    ("nope", "LOAD3D_CAMERA"),
])
def test_load3d_node_refuses_bad_camera_info(info, message):
    with pytest.raises(SpecError) as e:
        S.PoseFactoryCameraFromLoad3D().make(info, 512, 512)
    assert message in str(e.value)


# --- Camera List -------------------------------------------------------------------------------------
def test_camera_list_appends_and_checks():
    (first,) = S.PoseFactoryCameraFromLoad3D().make({"position": _xyz([0, 1, 3]), "target": _xyz([0, 1, 0])}, 512, 512)
    (both,) = S.PoseFactoryCameraList().make('[{"location": [3, 0, 1], "look_at": [0, 0, 1], "roll": 5}]', first)
    assert [c["location"] for c in both["cameras"]] == [[0.0, -3.0, 1.0], [3.0, 0.0, 1.0]]
    assert both["cameras"][1]["roll"] == 5.0
    assert S.PoseFactoryCameraList.VALIDATE_INPUTS(S.DEFAULT_CAMERA_LIST) is True
    assert "not valid JSON" in S.PoseFactoryCameraList.VALIDATE_INPUTS("[{")
    assert "focal_length: got 1" in S.PoseFactoryCameraList.VALIDATE_INPUTS(
        '[{"location": [3, 0, 1], "look_at": [0, 0, 1], "focal_length": 1}]')
    with pytest.raises(SpecError, match="append_to: got an orbit"):
        S.PoseFactoryCameraList().make(S.DEFAULT_CAMERA_LIST, {"type": "orbit", "views": 2})


@pytest.mark.parametrize("joint, dof, child", [("l_elbow", "flex", "l_wrist"), ("l_shoulder", "twist", "l_wrist"),
                                               ("r_shoulder", "abduct", "r_elbow"), ("spine", "side", "neck")])
def test_gizmo_axis_turns_the_limb_as_the_rig_does(joint, dof, child):
    """Turning a DOF by 10 degrees moves the limb below as a rotation about the served axis through
    the joint: the axis the gizmo's ring is drawn around and dragged about."""
    pose = {"preset": "waving", "joints": {"l_shoulder": {"flex": 30, "abduct": 40}, "spine": {"flex": 10}}}
    a = viewer.scene({"poses": [pose]})
    value = a["angles"][joint][dof]
    turned = dict(pose, joints={**pose["joints"], joint: {**pose["joints"].get(joint, {}), dof: value + 10}})
    b = viewer.scene({"poses": [turned]})
    pos_a, pos_b = np.reshape(a["positions"], (-1, 3)), np.reshape(b["positions"], (-1, 3))
    j, c = rig.JOINT_INDEX[joint], rig.JOINT_INDEX[child]
    axis = a["dof_axes"][joint][[d.name for d in rig.JOINTS[joint].dofs].index(dof)]
    want = rig.rotation(axis, 10) @ (pos_a[c] - pos_a[j]) + pos_a[j]
    assert np.allclose(pos_b[c] - pos_b[j], want - pos_a[j], atol=1e-4)
    assert not np.allclose(pos_b[c], pos_a[c], atol=1e-3)  # it did move


def test_limits_carry_the_mirror_sign():
    by_name = {j["name"]: {d["name"]: d["mirror_sign"] for d in j["dofs"]} for j in viewer.limits()["joints"]}
    assert by_name["root"]["yaw"] == -1 and by_name["spine"]["flex"] == 1 and by_name["l_shoulder"]["twist"] == 1
    assert poses_mod.mirror_angles({"spine": {"side": 10, "flex": 5}}) == {"spine": {"side": -10, "flex": 5}}


# --- poses known only after a run, props -----------------------------------------------------------------
def test_poses_made_when_the_prompt_ran_are_shown_after_the_run():
    """A Motion Clip's (or Pose From Photo's) poses: before a run the default and a note; after it the
    browser sends the key the node's UI output carried and the viewer shows exactly those poses."""
    clip = {"class_type": "PoseFactoryMotionClip", "inputs": {"clip": "walk.bvh"}}
    made = [{"preset": "t_pose", "joints": {"l_elbow": {"flex": 30}}}, {"preset": "waving", "joints": {}}]
    before = R.viewer_scene({}, {"poses": clip})
    assert before["notes"] and before["frames"] == 1
    key = viewer.remember(made)
    after = R.viewer_scene({}, {"poses": dict(clip, result=key), "frame": 1})
    want = viewer.scene({"poses": made, "frame": 1})
    assert "notes" not in after and after == want and after["frames"] == 2
    # inside a Pose List too, and a key the server does not know (restarted since) shows the default again
    listed = {"class_type": "PoseFactoryPoseList", "inputs": {"poses_1": dict(clip, result=key), "poses_2": POSES}}
    assert R.viewer_scene({}, {"poses": listed})["frames"] == 4
    assert R.viewer_scene({}, {"poses": dict(clip, result="0" * 24)})["notes"]
    with pytest.raises(R.RouteError, match="allowed"):
        R.viewer_scene({}, {"poses": dict(clip, result=key, extra=1)})


def test_props_are_placed_as_the_worker_places_them(tmp_path, monkeypatch):
    """Pose Prop nodes chained into Request Pose Batch's props: the viewer gets each mesh file (under
    ComfyUI's folders, for /view) and the matrix that maps the file's vertices where the worker puts them."""
    from nodes import mesh_nodes
    from pose_factory.mesh import props as props_mod

    monkeypatch.setattr(mesh_nodes, "output_directory", lambda: str(tmp_path))
    (tmp_path / "3d").mkdir()
    (tmp_path / "3d" / "box.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")
    place = dict(location_x=0.6, location_y=-0.2, location_z=0.1, rotation_x=10, rotation_y=-20, rotation_z=35,
                 scale=0.5, shading="flat")
    first = {"class_type": "PoseFactoryPoseProp", "inputs": dict(place, mesh_file="3d/box.obj")}
    second = {"class_type": "PoseFactoryPoseProp", "inputs": dict(place, location_x=-0.7, mesh=None, props=first)}
    got = R.viewer_scene({}, {"props": second})
    assert len(got["props"]) == 1 and "a prop's mesh: known when the prompt runs" in got["notes"][0]
    prop = got["props"][0]
    assert prop["file"] == {"type": "output", "subfolder": "3d", "filename": "box.obj"} and prop["format"] == "obj"
    v = np.random.default_rng(0).normal(size=(20, 3))
    m = np.array(prop["matrix"])
    want = props_mod.place(v, props_mod.normalize_placement(
        {"location": [0.6, -0.2, 0.1], "rotation": [10, -20, 35], "scale": 0.5}))
    assert np.abs(v @ m[:3, :3].T + m[:3, 3] - want).max() < 1e-6
    with pytest.raises(R.RouteError, match="mesh_file"):
        R.viewer_scene({}, {"props": {"class_type": "PoseFactoryPoseProp", "inputs": dict(place, mesh_file="nope.obj")}})
    with pytest.raises(R.RouteError, match="Pose Prop"):
        R.viewer_scene({}, {"props": POSES})


# --- several people (issue 22) ------------------------------------------------------------------------
SHARED = ["a_pose"]
PEOPLE = {"type": "scene", "subjects": [
    {"type": "mannequin", "height": 1.9, "build": "slim", "poses": ["waving", "t_pose"],
     "place": {"position": [-0.8, 0.2], "facing": 0}},
    {"type": "mannequin", "height": 1.3, "build": "average", "shape": "child",  # the shared poses
     "place": {"position": [0.7, -0.4], "facing": 90}},
    {"type": "mannequin", "height": 1.75, "build": "heavy", "poses": [{"preset": "rest", "offset": [0.1, 0, 0]}],
     "place": {"position": [0.0, 1.5], "facing": -150}},
]}


def _by_hand(subject, entry):
    """A person's keypoints and vertices computed here: the rig's forward kinematics, grounded (the
    lowest vertex on the floor), the pose's offset, then turned about z by facing (counter-clockwise
    from above) and moved to position."""
    from pose_factory.render import shape as shape_mod

    body = mq.build(subject["height"], subject["build"], shape_mod.normalize_shape(subject.get("shape"), "shape"))
    angles, offset, grounded = poses_mod.pose_angles(poses_mod.normalize_pose_entry(entry, "pose"))
    fk = rig.forward_kinematics(body.rest, angles)
    verts = mq.posed_vertices(body, fk)
    kp = mq.posed_keypoints(body, fk)
    lift = np.array([0.0, 0.0, -verts[:, 2].min() if grounded else 0.0]) + offset
    a = math.radians(subject["place"]["facing"])
    turn = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    at = np.array([*subject["place"]["position"], 0.0])
    return (kp + lift) @ turn.T + at, (verts + lift) @ turn.T + at


def test_scene_shows_every_person_placed_and_frames_them_all():
    """Three people (their own poses, the shared poses, a 1-pose person held): each person's keypoints
    and skinned mesh are the rig's, placed by hand; facing 90 looks along +X; the cameras are framed
    on everyone's every frame as the worker frames them (render_batch: framing_vertices per frame and
    person)."""
    cams = {"type": "orbit", "views": 4, "elevation": 15}
    got = viewer.scene({"subject": PEOPLE, "poses": SHARED, "frame": 1, "cameras": cams,
                        "render": {"width": 512, "height": 384}})
    assert got["frames"] == 2 and len(got["people"]) == 3 and all(p["drawn"] for p in got["people"])
    want_entries = ["t_pose", "a_pose", {"preset": "rest", "offset": [0.1, 0, 0]}]
    frame_vertices = [[], []]
    for k, (p, s, entry) in enumerate(zip(got["people"], PEOPLE["subjects"], want_entries)):
        assert p["index"] == k and p["place"] == {"position": s["place"]["position"], "facing": s["place"]["facing"]}
        kp, verts = _by_hand(s, entry)
        assert np.abs(np.reshape(p["keypoints"], (-1, 3)) - kp).max() < 2e-5, k
        m = viewer.mesh(**p["subject"])
        rest, j = np.reshape(m["rest"], (-1, 3)), np.array(m["vertex_joint"])
        skinned = np.einsum("nij,nj->ni", np.reshape(p["rotations"], (-1, 3, 3))[j],
                            np.reshape(m["vertices"], (-1, 3)) - rest[j]) + np.reshape(p["positions"], (-1, 3))[j]
        assert np.abs(skinned - verts).max() < 1e-4, k
        for f, e in enumerate([s.get("poses", SHARED)[min(f, len(s.get("poses", SHARED)) - 1)] for f in range(2)]):
            frame_vertices[f].append(_by_hand(s, e)[1])
    assert got["people"][1]["subject"]["shape"] is not None and got["people"][0]["pose"]["preset"] == "t_pose"
    # facing 90: the child's nose is in front of its neck along +X (facing 0 looks along -Y)
    names = mq.keypoint_names()
    child = np.reshape(got["people"][1]["keypoints"], (-1, 3))
    ahead = child[names.index("nose")] - child[names.index("neck")]
    assert ahead[0] > 0.05 and abs(ahead[1]) < 0.01
    # top-level fields stay person 0's (one-person callers)
    assert got["keypoints"] == got["people"][0]["keypoints"] and got["subject"] == got["people"][0]["subject"]
    spec = spec_mod.normalize_spec({"subjects": [dict(s, poses=s.get("poses", SHARED)) for s in PEOPLE["subjects"]],
                                    "cameras": cams, "render": {"width": 512, "height": 384}})
    want = cameras_mod.build_cameras(spec, cameras_mod.framing_points([v for f in frame_vertices for v in f]))
    assert np.allclose([c["location"] for c in got["cameras"]], [c["location"] for c in want], atol=1e-6)
    one = viewer.scene({"subject": PEOPLE["subjects"][0], "frame": 1, "cameras": cams, "render": {"width": 512, "height": 384}})
    assert [c["location"] for c in one["cameras"]] != [c["location"] for c in got["cameras"]]  # framed on all three


def test_scene_people_errors_name_the_person():
    bad = {"type": "scene", "subjects": [{"type": "mannequin", "poses": ["rest", "a_pose"]},
                                         {"type": "mannequin", "poses": ["rest", "a_pose", "t_pose"]}]}
    with pytest.raises(SpecError, match=r"subjects\[0\]\.poses.*got 2 poses while subjects\[1\] has 3"):
        viewer.scene({"subject": bad})
    with pytest.raises(SpecError, match=r"subjects\[1\]\.place\.facing"):
        viewer.scene({"subject": {"type": "scene", "subjects": [{}, {"place": {"facing": 400}}]}})
    with pytest.raises(SpecError, match=r"subject\.subjects"):
        viewer.scene({"subject": {"type": "scene", "subjects": []}})
    with pytest.raises(SpecError, match="subject"):
        viewer.scene({"subject": ["x"]})


def test_a_rig_the_viewer_cannot_read_is_listed_not_drawn_and_said_so():
    """A custom rig's person whose file cannot be read here keeps its place in the order (person k is
    subjects[k]) and the scene says why and where to see it, never a stand-in figure (nor the path)."""
    rig_subject = {"type": "rig", "rig": {"file": "/nowhere/hero.glb"}, "bone_map": "auto", "height": "auto",
                   "poses": ["t_pose"], "place": {"position": [1, 0], "facing": 0}}
    got = viewer.scene({"subject": {"type": "scene", "subjects": [rig_subject, {"type": "mannequin"}]}, "poses": ["waving"]})
    assert [p["drawn"] for p in got["people"]] == [False, True]
    assert "positions" not in got["people"][0] and got["people"][1]["pose"]["preset"] == "waving"
    assert got["keypoints"] == got["people"][1]["keypoints"]
    (note,) = got["notes"]
    assert note.startswith("person 0 (custom rig) is not drawn here: rig: 'hero.glb' does not exist") and "after the render" in note
    assert "/nowhere" not in json.dumps(got)


def test_mesh_takes_the_body_shape():
    from pose_factory.render import shape as shape_mod

    child = viewer.mesh(1.3, "average", "child")
    body = mq.build(1.3, "average", shape_mod.normalize_shape("child", "shape"))
    assert child["shape"] == shape_mod.normalize_shape("child", "shape")
    assert np.allclose(np.reshape(child["rest"], (-1, 3)), body.rest, atol=1e-5)
    assert not np.allclose(child["rest"], viewer.mesh(1.3, "average")["rest"])
    with pytest.raises(SpecError, match="shape"):
        viewer.mesh(1.3, "average", "giant")
    assert R.viewer_mesh({}, "1.3", "average", "child")["rest"] == child["rest"]
    assert R.viewer_mesh({}, "1.3", "average", json.dumps(child["shape"]))["rest"] == child["rest"]
    with pytest.raises(R.RouteError, match="shape: got"):
        R.viewer_mesh({}, "1.3", "average", "{")


@pytest.mark.blender
def test_several_people_are_the_workers(tmp_path):
    """The worker renders the same three people: its manifest's per-person 3D keypoints and its
    cameras are the viewer's (a real Blender render through render.render_batch)."""
    from pose_factory import render, storage as storage_mod

    cams = {"type": "orbit", "views": 2, "elevation": 10}
    spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "tests",
            "render": {"width": 96, "height": 96, "passes": ["keypoints"]}, "cameras": cams,
            "subjects": [dict(s, poses=s.get("poses", SHARED)) for s in PEOPLE["subjects"]]}
    manifest, _ = render.render_batch(spec, storage_mod.LocalStorage(tmp_path))
    for f in range(2):
        got = viewer.scene({"subject": PEOPLE, "poses": SHARED, "frame": f, "cameras": cams,
                            "render": {"width": 96, "height": 96}})
        worker = manifest["joints_3d"][f]["people"]
        assert len(worker) == 3
        for p, w in zip(got["people"], worker):
            assert np.abs(np.reshape(p["keypoints"], (-1, 3)) - np.asarray(w["keypoints"])).max() < 1e-4
    views = manifest["views"]
    assert np.allclose([c["location"] for c in got["cameras"]], [c["location"] for c in views], atol=1e-4)
    assert np.allclose([c["rotation"] for c in got["cameras"]], [c["rotation"] for c in views], atol=1e-5)


def _scene_node(subject, x, y, facing, poses=None, scene=None):
    inputs = {"subject": subject, "position_x": x, "position_y": y, "facing": facing}
    if poses is not None:
        inputs["poses"] = poses
    if scene is not None:
        inputs["scene"] = scene
    return {"class_type": "PoseFactoryScene", "inputs": inputs}


def _mannequin_node(height, build="average"):
    return {"class_type": "PoseFactoryMannequin", "inputs": {"height": height, "build": build}}


def test_chained_scene_nodes_are_what_the_nodes_make(tmp_path):
    """The viewer sends a chain of Scene nodes (the first node's person is person 0, as the nodes
    order them); the server runs the Scene node's own function; a Custom Rig's person is listed,
    not drawn (its subject made as the node makes it, without reading the file)."""
    from nodes import people_nodes as P

    own = {"class_type": "PoseFactoryPoseFromJSON", "inputs": {"joints": '{"l_elbow": {"flex": 90}}', "preset": "rest"}}
    first = _scene_node(_mannequin_node(1.85), -0.6, 0, 0)
    second = _scene_node(_mannequin_node(1.4, "heavy"), 0.6, 0.3, 45, poses=own, scene=first)
    got = R.viewer_scene({}, {"subject": second, "poses": POSES, "cameras": ORBIT, "frame": 1, "width": 256, "height": 256})
    (made,) = P.PoseFactoryScene().make(S.PoseFactoryMannequin().make(1.4, "heavy")[0], 0.6, 0.3, 45,
                                         poses=S.PoseFactoryPoseFromJSON().make('{"l_elbow": {"flex": 90}}', "rest")[0],
                                         scene=P.PoseFactoryScene().make(S.PoseFactoryMannequin().make(1.85, "average")[0],
                                                                         -0.6, 0, 0)[0])
    (poses,) = S.PoseFactoryPoseSequence().make("t_pose\nwaving mirror")
    want = viewer.scene({"subject": made, "poses": poses, "cameras": S.PoseFactoryCameraOrbit().make(2, 0, 0, 50, False, 0, 0)[0],
                         "frame": 1, "render": {"width": 256, "height": 256}})
    assert got == want
    assert [p["subject"]["height"] for p in got["people"]] == [1.85, 1.4]
    assert got["people"][0]["pose"]["preset"] == "waving" and got["people"][1]["angles"]["l_elbow"]["flex"] == 90
    assert got["people"][1]["place"] == {"position": [0.6, 0.3], "facing": 45}

    hero = tmp_path / "hero.glb"
    hero.write_bytes(b"glTF")
    rig = {"class_type": "PoseFactoryCustomRig", "inputs": {"rig_file": "(use path_or_key)", "path_or_key": str(hero),
                                                            "bone_map": "mixamo", "custom_map": "", "height": 0}}
    got = R.viewer_scene({}, {"subject": _scene_node(rig, 1, 0, 0, scene=first), "poses": POSES})
    assert [p["drawn"] for p in got["people"]] == [True, False] and "person 1 (custom rig) is not drawn here" in got["notes"][0]
    assert str(hero) not in json.dumps(got)  # the browser is not told the user's paths
    # a Custom Rig that refuses its widgets: the person is listed, undrawn, and the note says why (no 400:
    # the node itself refuses it when the prompt is queued)
    bad = dict(rig, inputs=dict(rig["inputs"], path_or_key="not_a_rig.obj"))
    got = R.viewer_scene({}, {"subject": _scene_node(bad, 1, 0, 0, scene=first), "poses": POSES})
    assert [p["drawn"] for p in got["people"]] == [True, False]
    assert "person 1 (custom rig) is not drawn here: Custom Rig path_or_key: 'not_a_rig.obj' is not a rig file" in got["notes"][0]


TEMPLATE_RIG = ROOT / "example_workflows" / "input" / "3d" / "pose_factory_mannequin_rig.glb"


@pytest.mark.blender
def test_a_custom_rig_is_drawn_as_the_worker_poses_it(tmp_path):
    """A Mixamo-named GLB (the pack's template rig) beside a mannequin: Blender reads it once (a
    child), the viewer poses its bones in numpy; its keypoints and the orbit cameras framed on both
    are the worker's (render_batch with the rig stored by content), and the rest mesh moved by the
    scene's per-bone matrices puts the keypoint-carrying bones where the keypoints are."""
    import shutil as sh

    from pose_factory import render, rigs, storage as storage_mod
    from pose_factory.viewer import rigview

    path = tmp_path / "hero.glb"
    sh.copyfile(TEMPLATE_RIG, path)
    rig_subject = {"type": "rig", "rig": {"file": str(path)}, "bone_map": "mixamo", "height": 1.6,
                   "poses": ["waving", "sitting"], "place": {"position": [0.5, 0.1], "facing": 30}}
    mann = {"type": "mannequin", "poses": ["a_pose"], "place": {"position": [-0.5, 0.0], "facing": 0}}
    cams = {"type": "orbit", "views": 2, "elevation": 10}
    store = storage_mod.LocalStorage(tmp_path / "store")
    raw = {"project": "tests", "render": {"width": 128, "height": 128, "passes": ["keypoints"]}, "cameras": cams,
           "subjects": [rig_subject, mann]}
    manifest, _ = render.render_batch(rigs.resolve(raw, store, "tests"), store)
    before = set(tmp_path.iterdir())
    for f in range(2):
        got = viewer.scene({"subject": {"type": "scene", "subjects": [rig_subject, mann]}, "frame": f, "cameras": cams,
                            "render": {"width": 128, "height": 128}})
        person = got["people"][0]
        assert person["drawn"] and person["type"] == "rig" and "notes" not in got
        ours = np.reshape(person["keypoints"], (-1, 3))
        theirs = np.array([[np.nan] * 3 if p is None or p[0] is None else p for p in manifest["joints_3d"][f]["people"][0]["keypoints"]], float)
        found = ~np.isnan(theirs).any(axis=1)
        assert sorted(np.flatnonzero(~found).tolist()) == person["missing"]
        err = np.abs(ours[found] - theirs[found]).max()
        print(f"rig keypoints, frame {f}: {err * 1000:.3f} mm from the worker's")
        assert err < 5e-4, f"frame {f}: {err * 1000:.2f} mm"  # grounded on rigidly moved vertices (the worker blends)
    cam_err = np.abs(np.array([c["location"] for c in got["cameras"]]) - [c["location"] for c in manifest["views"]]).max()
    print(f"orbit cameras framed on the rig and the mannequin: {cam_err * 1000:.3f} mm from the worker's")
    assert cam_err < 2e-3
    assert set(tmp_path.iterdir()) == before  # nothing written beside the user's file
    m = rigview.loaded(person["rig"]).mesh()
    v, b = np.reshape(m["vertices"], (-1, 3)), np.array(m["vertex_bone"])
    assert len(m["triangles"]) % 3 == 0 and max(m["triangles"]) < len(v) and m["bones"] == len(person["skin"]) // 12
    skin = np.reshape(person["skin"], (-1, 3, 4))
    posed = np.einsum("nij,nj->ni", skin[b][:, :, :3], v) + skin[b][:, :, 3]
    wrist = mq.keypoint_names().index("l_wrist")
    near = np.linalg.norm(posed - ours[wrist], axis=1).min()
    assert near < 0.06  # the posed mesh's hand is at the hand's keypoint
    assert posed[:, 2].min() == pytest.approx(0.0, abs=5e-5)  # grounded (5-decimal JSON)
    alone = viewer.scene({"subject": {k: v for k, v in rig_subject.items() if k not in ("place", "poses")}, "poses": ["rest"]})  # a Custom Rig straight into the request
    assert [p["type"] for p in alone["people"]] == ["rig"] and alone["people"][0]["drawn"] and alone["subject"] is None


def test_rig_mesh_route_answers_only_a_loaded_rig():
    with pytest.raises(R.RouteError) as e:
        R.viewer_rig_mesh({}, "0" * 24)
    assert e.value.status == 404 and "ask the scene again" in str(e.value)
    with pytest.raises(R.RouteError):
        R.viewer_rig_mesh({}, None)


def test_scene_carries_the_loaders_hide_list_as_body_points():
    # issue 23.2: the OpenPose preview (body only) leaves out what the Load Pose Batch fed by the
    # request hides; each person its own ("1:" names only person 1)
    plain = R.viewer_scene({}, {"frame": 0})
    assert "hidden" not in plain["people"][0]
    got = R.viewer_scene({}, {"frame": 0, "hide": "left_arm, face, 1:nose"})
    assert got["people"][0]["hidden"] == [5, 6, 7]  # l_shoulder, l_elbow, l_wrist in OpenPose's order
    assert got["keypoints"] == plain["keypoints"]  # the scene itself is the same
    assert R.viewer_scene({}, {"frame": 0, "hide": "0:head"})["people"][0]["hidden"] == [0, 14, 15, 16, 17]
    bad = R.viewer_scene({}, {"frame": 0, "hide": "tail"})
    assert "hidden" not in bad["people"][0]
    assert any("Load Pose Batch's hide: unknown joint or group 'tail'" in n for n in bad["notes"])
