"""A mesh placed in a pose scene as a prop (pose_factory/mesh/props.py): the spec field, its batch id,
the refusals, and real Blender renders of an analytic box against ray-box geometry computed here."""
import copy
import hashlib
import json
import types
from pathlib import Path

import numpy as np
import pytest

from pose_factory import cli, loading
from pose_factory import spec as S
from pose_factory.errors import SpecError
from pose_factory.mesh import meshdata, props
from pose_factory.render import mannequin as mq, passes, poses, render_batch
from pose_factory.storage import LocalStorage, batch_prefix



def tm():
    """trimesh (the worker environment's; the ComfyUI-side venv has none: those tests skip)."""
    return pytest.importorskip("trimesh")

BASE = {"render": {"width": 256, "height": 256}, "cameras": {"views": 1}, "subjects": [{"poses": ["a_pose"]}]}
SHA = "ab" * 32
EXTENTS_GLTF = (0.25, 0.25, 0.1)  # the box file's x, y (up), z (towards a glTF viewer)
ROTATION = [0.0, 0.0, 20.0]
SCALE = [1.2, 1.0, 0.8]
L_KNEE, R_KNEE = 12, 9  # COCO-18
PLATE_GLTF = (0.12, 0.12, 0.008)  # a thin plate facing the camera


def spec_with(prop_list, base=BASE):
    return dict(copy.deepcopy(base), props=prop_list)


def refused(raw, field, *fragments):
    with pytest.raises(SpecError) as info:
        S.normalize_spec(raw)
    assert info.value.field == field, str(info.value)
    for f in fragments:
        assert f in str(info.value), str(info.value)


def box_file(path, extents=EXTENTS_GLTF):
    tm().creation.box(extents=extents).export(path)
    return path


# --- the spec ---------------------------------------------------------------------------------------
def test_a_spec_without_props_keeps_its_form_and_batch_id():
    demo = S.normalize_spec(cli.DEMO_SPEC)
    assert "props" not in demo
    assert S.batch_id(demo) == "d561348d75cc0345"  # the demo's id since recipe 5 (feet in the keypoints)
    assert S.normalize_spec(dict(cli.DEMO_SPEC, props=[])) == demo
    assert S.batch_id(dict(cli.DEMO_SPEC, props=[])) == "d561348d75cc0345"


def test_a_prop_is_normalized_with_defaults_and_enters_the_batch_id():
    one = S.normalize_spec(spec_with([{"mesh": {"sha256": SHA, "format": "glb"}, "scale": 2}]))
    assert one["props"] == [{"mesh": {"sha256": SHA, "format": "glb"}, "location": [0.0, 0.0, 0.0],
                             "rotation": [0.0, 0.0, 0.0], "scale": [2.0, 2.0, 2.0], "shading": "smooth"}]
    assert S.normalize_spec(one) == one  # idempotent
    ids = {S.batch_id(BASE), S.batch_id(one),
           S.batch_id(spec_with([{"mesh": {"sha256": "cd" * 32, "format": "glb"}, "scale": 2}])),
           S.batch_id(spec_with([{"mesh": {"sha256": SHA, "format": "glb"}, "scale": 2, "location": [0, -0.5, 0]}]))}
    assert len(ids) == 4


def test_bad_props_are_refused_naming_the_field():
    ok = {"mesh": {"sha256": SHA, "format": "glb"}}
    refused(spec_with([dict(ok, colour="red")]), "props[0].colour", "unknown key", "location, rotation, scale")
    refused(spec_with([dict(ok, location=[0, float("nan"), 0])]), "props[0].location[1]", "from -100 to 100")
    refused(spec_with([dict(ok, location=[0, 0])]), "props[0].location", "a list of 3 numbers")
    refused(spec_with([dict(ok, scale=0)]), "props[0].scale[0]", "from 0.001 to 100")
    refused(spec_with([dict(ok, scale=float("inf"))]), "props[0].scale[0]")
    refused(spec_with([dict(ok, rotation=[0, 0, 720])]), "props[0].rotation[2]", "degrees")
    refused(spec_with([dict(ok, shading="toon")]), "props[0].shading", "smooth, flat")
    refused(spec_with([{"location": [0, 0, 0]}]), "props[0].mesh", "missing")
    refused(spec_with([{"mesh": "chair.glb"}]), "props[0].mesh", "not stored yet")
    refused(spec_with([{"mesh": {"sha256": "xyz", "format": "glb"}}]), "props[0].mesh.sha256", "64 lowercase hex")
    refused(spec_with([{"mesh": {"sha256": SHA, "format": "fbx"}}]), "props[0].mesh.format", "glb, obj")
    refused(spec_with([ok] * (props.MAX_PROPS + 1)), "props", f"at most {props.MAX_PROPS} props")
    refused(spec_with({"mesh": ok}), "props", "a list of at most")
    refused(spec_with(None), "props", "a list of props")


# --- resolving references to stored meshes -----------------------------------------------------------
def test_a_file_is_stored_by_content_and_a_changed_mesh_changes_the_batch_id(tmp_path):
    storage = LocalStorage(tmp_path / "store")
    a = box_file(tmp_path / "a.glb")
    b = box_file(tmp_path / "b.glb", (0.25, 0.25, 0.12))
    ra = props.resolve(spec_with([{"mesh": str(a)}]), storage, "p")
    ref = ra["props"][0]["mesh"]
    assert ref["format"] == "glb" and storage.get_bytes(props.upload_key("p", ref)) == a.read_bytes()
    assert props.resolve(spec_with([{"mesh": {"file": str(a)}}]), storage, "p") == ra  # the same content
    assert props.resolve(ra, storage, "p") == ra  # stored already: unchanged
    rb = props.resolve(spec_with([{"mesh": str(b)}]), storage, "p")
    assert S.batch_id(ra) != S.batch_id(rb) != S.batch_id(BASE)
    with pytest.raises(SpecError, match="not stored in project 'q'"):
        props.resolve(ra, storage, "q")
    v, f = meshdata.load_file(a)  # ComfyUI core's MESH arrives as arrays: stored as .npz
    rc = props.resolve(spec_with([{"mesh": {"vertices": v, "faces": f}}]), storage, "p")
    assert rc["props"][0]["mesh"]["format"] == "npz"


def test_bad_meshes_are_refused_with_clear_errors(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path / "store")

    def refuses(mesh, *fragments):
        with pytest.raises(SpecError) as info:
            props.resolve(spec_with([{"mesh": mesh}]), storage, "p")
        assert info.value.field == "props[0].mesh", str(info.value)
        for f in fragments:
            assert f in str(info.value), str(info.value)

    refuses(str(tmp_path / "missing.glb"), "does not exist")
    png = tmp_path / "photo.glb"
    from pose_factory import imageio

    png.write_bytes(imageio.encode_png(np.zeros((8, 8, 3), np.uint8)))
    refuses(str(png), "not a GLB file")
    (tmp_path / "notes.txt").write_text("v 0 0 0")
    refuses(str(tmp_path / "notes.txt"), "a .txt file", ".glb")
    (tmp_path / "empty.obj").write_text("hello\n")
    refuses(str(tmp_path / "empty.obj"), "not a OBJ file")
    refuses(42, "got 42", "a mesh file path")
    refuses({"project": "p", "batch_id": "0123456789abcdef"}, "has no stored GLB mesh")
    sphere = tm().creation.icosphere(subdivisions=3)  # 1280 faces
    monkeypatch.setattr(props, "MAX_PROP_FACES", 1000)
    refuses({"vertices": sphere.vertices, "faces": sphere.faces}, "1280 faces", "at most 1000 faces")
    refuses({"vertices": np.full((3, 3), np.nan), "faces": [[0, 1, 2]]}, "non-finite")


def test_the_worker_reads_checks_and_places_each_prop(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path / "store")
    glb = box_file(tmp_path / "box.glb")
    raw = spec_with([{"mesh": str(glb), "location": [0.1, -0.4, 0.5], "rotation": ROTATION, "scale": SCALE}])
    spec = S.normalize_spec(props.resolve(raw, storage, "p"))
    [path] = props.prepare_files(spec, storage, "p", str(tmp_path / "work"))
    v, _ = meshdata.read_npz(path)
    # the oracle: trimesh's own box and transformations (static XYZ Euler), Y-up file turned Z-up
    box = tm().creation.box(extents=EXTENTS_GLTF)
    m = tm().transformations.euler_matrix(*np.radians(ROTATION), axes="sxyz")
    want = meshdata.y_up_to_z_up(box.vertices) * SCALE @ m[:3, :3].T + [0.1, -0.4, 0.5]
    assert np.allclose(np.sort(v, axis=0), np.sort(want, axis=0), atol=1e-9)
    monkeypatch.setattr(props, "MAX_PROP_FACES", 10)  # a box has 12 triangles
    with pytest.raises(SpecError, match=r"props\[0\].mesh: 12 faces, allowed: at most 10 faces"):
        props.prepare_files(spec, storage, "p", str(tmp_path / "work"))
    broken = b"glTF" + bytes(60)  # a GLB header and nothing behind it: trimesh cannot read it
    ref = {"sha256": hashlib.sha256(broken).hexdigest(), "format": "glb"}
    storage.put_bytes(props.upload_key("p", ref), broken)
    with pytest.raises(SpecError, match=r"props\[0\].mesh: .*could not be read"):
        props.prepare_files(S.normalize_spec(spec_with([{"mesh": ref}])), storage, "p", str(tmp_path / "work"))
    storage.delete(props.upload_key("p", spec["props"][0]["mesh"]))
    with pytest.raises(SpecError, match="is not in storage"):
        props.prepare_files(spec, storage, "p", str(tmp_path / "work"))


# --- real renders -------------------------------------------------------------------------------------
def ray_box(c, rays, centre, rotation, half):
    """Slab test of rays from c against the box (centre, world rotation, half extents): (hit, t, world normal)."""
    o = (c - centre) @ rotation  # into the box's frame
    d = rays @ rotation
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o) / d, (half - o) / d
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    t_in, t_out = near.max(-1), far.min(-1)
    hit = (t_out >= t_in) & (t_in > 0)
    axis = near.argmax(-1)
    n_local = np.zeros(d.shape)
    np.put_along_axis(n_local, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    return hit, t_in, n_local @ rotation.T


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("props")
    storage = LocalStorage(tmp / "store")
    body = mq.build(1.75, "average")
    knee = mq.posed_keypoints(body, poses.pose_body(body, poses.normalize_pose_entry("a_pose", "p")))[L_KNEE]
    pose = poses.pose_body(body, poses.normalize_pose_entry("a_pose", "p"))
    centre = knee + [0.0, -0.35, 0.0]  # between the knee and a camera in front (the subject faces -Y)
    prop = {"mesh": str(box_file(tmp / "box.glb")), "location": centre.tolist(), "rotation": ROTATION,
            "scale": SCALE, "shading": "flat"}
    # a thin plate just in front of the other knee's skin: nearer the joint than its radius, so only
    # "the first hit must be the body" hides the knee
    r_knee = mq.posed_keypoints(body, pose)[R_KNEE]
    verts = mq.posed_vertices(body, pose)
    skin = verts[(np.abs(verts[:, 0] - r_knee[0]) < 0.02) & (np.abs(verts[:, 2] - r_knee[2]) < 0.02)][:, 1].min()
    plate_centre = np.array([r_knee[0], skin - 0.006, r_knee[2]])
    plate = {"mesh": str(box_file(tmp / "plate.glb", PLATE_GLTF)), "location": plate_centre.tolist()}
    with_prop, rendered = render_batch(props.resolve(spec_with([prop, plate]), storage, "p"), storage, project="p")
    without, _ = render_batch(copy.deepcopy(BASE), storage, project="p")
    assert rendered and with_prop["batch_id"] != without["batch_id"]
    out = {}
    for name, m in (("with", with_prop), ("without", without)):
        folder = storage.local_path(batch_prefix("p", m["batch_id"]))
        entries = loading.select_entries(m)
        files = m["entries"][0]["files"]
        out[name] = {"manifest": m, "parts": loading._decode(folder, m, entries, "parts", "gray")[0],
                     "mm": loading._decode(folder, m, entries, "depth16", "gray")[0],
                     "passes": loading.load_depth_normal(folder, m, entries, "batch", "opengl", parts="props"),
                     "keypoints": json.loads((folder / files["keypoints"]["key"]).read_text())["people"][0]}
    cam = with_prop["views"][0]
    r, c, k = np.array(cam["rotation"]), np.array(cam["location"]), cam["intrinsics"]
    ys, xs = np.mgrid[0:256, 0:256]
    rays = np.stack([(xs - k["cx"]) / k["fx"], -(ys - k["cy"]) / k["fy"], -np.ones((256, 256))], -1) @ r.T
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    rotation = tm().transformations.euler_matrix(*np.radians(ROTATION), axes="sxyz")[:3, :3]
    half = meshdata.y_up_to_z_up(np.array(EXTENTS_GLTF)) * SCALE / 2
    hit, t, normal = ray_box(c, rays, centre, rotation, np.abs(half))
    out["box"] = {"hit": hit, "planar": t * (rays @ -r[:, 2]), "normal_cam": normal @ r, "knee": knee}
    to_knee = (r_knee - c) / np.linalg.norm(r_knee - c)
    p_hit, p_t, _ = ray_box(c, to_knee[None], plate_centre, np.eye(3), np.abs(meshdata.y_up_to_z_up(PLATE_GLTF)) / 2)
    out["plate"] = {"hit": bool(p_hit[0]), "to_knee": float(np.linalg.norm(c + to_knee * p_t[0] - r_knee)),
                    "radius": float(mq.visibility_rules()[0][R_KNEE])}
    return out


@pytest.mark.blender
def test_the_prop_has_its_label_and_is_in_the_mask_not_in_the_person_seg(scene):
    w, box = scene["with"], scene["box"]
    prop_px = w["parts"] == props.label(0)
    assert prop_px.sum() > 500
    assert box["hit"][prop_px].mean() > 0.995  # labelled pixels lie on the analytic box (a rim pixel may not)
    body_px = (w["parts"] > 0) & (w["parts"] < props.PROP_LABEL_BASE)
    # the box's pixels are the prop's, or the body's where the body is nearer
    in_front = body_px & (w["mm"] / 1000.0 < box["planar"])
    assert (prop_px | in_front)[box["hit"]].mean() > 0.995
    assert (w["passes"]["subject"][0][prop_px] == 1.0).all()  # mask/ includes it
    assert (w["passes"]["parts"][0] == (w["parts"] >= props.PROP_LABEL_BASE)).all()  # the loader's "props" mask
    assert (w["passes"]["seg"][0][prop_px] == 0).all()  # the ADE20K person seg: not a person
    assert set(np.unique(scene["without"]["parts"])) <= set(range(18))


@pytest.mark.blender
def test_the_prop_depth_and_normals_are_exact(scene):
    w, box = scene["with"], scene["box"]
    m = (w["parts"] == props.label(0)) & box["hit"]
    err = np.abs(w["mm"][m] / 1000.0 - box["planar"][m])
    assert np.median(err) < 0.001 and np.percentile(err, 99) < 0.002  # millimetre steps
    n = passes.rgb_to_normals(w["passes"]["normal"][0], "opengl")  # uint8
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip((n * box["normal_cam"]).sum(-1), -1, 1)))
    assert np.percentile(angle[m], 99) < 1.0  # flat faces: one normal each
    # the depth range includes the prop's pixels (nearer than the whole body)
    near = w["manifest"]["depth_range"]["near"]
    assert abs(near - w["mm"][m].min() / 1000.0) < 0.001
    assert near < scene["without"]["manifest"]["depth_range"]["near"] - 0.1
    depth8 = w["passes"]["depth"][0][..., 0]  # uint8
    assert depth8[m].max() == 255  # the prop's nearest pixel is the batch's near end


@pytest.mark.blender
def test_the_prop_hides_the_joint_behind_it_and_no_other(scene):
    w, wo = scene["with"]["keypoints"], scene["without"]["keypoints"]
    cover = scene["with"]["parts"] >= props.PROP_LABEL_BASE
    assert wo["pose_keypoints_2d"][3 * L_KNEE + 2] == 1.0  # seen without the prop
    assert w["pose_keypoints_2d"][3 * L_KNEE:3 * L_KNEE + 3] == [0, 0, 0]  # hidden by it
    assert w["pose_factory"]["occluded"]["pose_keypoints_2d"][3 * L_KNEE + 2] == 1.0  # its true place kept
    assert np.allclose(w["pose_factory"]["occluded"]["pose_keypoints_2d"][3 * L_KNEE:3 * L_KNEE + 2],
                       wo["pose_keypoints_2d"][3 * L_KNEE:3 * L_KNEE + 2])
    changed = 0
    for part in ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d"):
        a, b = np.reshape(w[part], (-1, 3)), np.reshape(wo[part], (-1, 3))
        for (x, y, _), pa, pb in zip(b, a, b):
            if pb[2] and cover[int(round(y)), int(round(x))]:
                continue  # behind the prop
            changed += not np.array_equal(pa, pb)
    assert changed == 0  # every point the prop does not cover is as without it


@pytest.mark.blender
def test_a_prop_within_a_joints_radius_still_hides_it(scene):
    plate = scene["plate"]
    assert plate["hit"] and plate["to_knee"] < plate["radius"]  # the ray meets the plate that close to the knee
    assert scene["without"]["keypoints"]["pose_keypoints_2d"][3 * R_KNEE + 2] == 1.0
    assert scene["with"]["keypoints"]["pose_keypoints_2d"][3 * R_KNEE:3 * R_KNEE + 3] == [0, 0, 0]
    assert (scene["with"]["parts"] == props.label(1)).sum() > 20


# --- the nodes: Pose Prop into Request Pose Batch, through the real local worker ----------------------
@pytest.fixture
def node_env(tmp_path, monkeypatch):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"data_root": str(tmp_path / "data"), "project": "demo"}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    from nodes import batch_nodes, mesh_nodes
    from pose_factory import settings as settings_mod

    out = tmp_path / "data" / "output"  # ComfyUI's output folder outside ComfyUI: where mesh_file may point
    (out / "3d").mkdir(parents=True)
    box_file(out / "3d" / "box.glb")
    yield {"mesh_nodes": mesh_nodes, "batch_nodes": batch_nodes, "settings": settings_mod.load_settings(), "out": out}
    from pose_factory.jobs import client

    client.close_clients()


WIDGETS = dict(location_x=0.0, location_y=-0.5, location_z=1.0, rotation_x=0.0, rotation_y=0.0, rotation_z=0.0,
               scale=1.0, shading="smooth")


def test_pose_prop_checks_its_widgets_and_file_at_queue_time(node_env):
    node = node_env["mesh_nodes"].PoseFactoryPoseProp
    assert node.VALIDATE_INPUTS(mesh_file="3d/box.glb") is True
    assert "no file under ComfyUI's input or output folder" in node.VALIDATE_INPUTS(mesh_file="3d/nope.glb")
    (Path(node_env["out"]) / "3d" / "photo.glb").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert node.VALIDATE_INPUTS(mesh_file="3d/photo.glb").startswith("mesh_file: not a GLB file")
    with pytest.raises(SpecError, match="location_y: got nan, allowed: a number from -100 to 100"):
        node().make(mesh_file="3d/box.glb", **dict(WIDGETS, location_y=float("nan")))
    with pytest.raises(SpecError, match="scale: got 0"):
        node().make(mesh_file="3d/box.glb", **dict(WIDGETS, scale=0.0))
    with pytest.raises(SpecError, match="exactly one of mesh, pose_factory_mesh, mesh_file"):
        node().make(**WIDGETS)
    (one,) = node().make(mesh_file="3d/box.glb", **WIDGETS)
    assert len(one) == 1 and one[0]["location"] == [0.0, -0.5, 1.0] and one[0]["mesh"]["file"].endswith("box.glb")


@pytest.mark.blender
def test_pose_props_render_through_request_pose_batch(node_env):
    torch = pytest.importorskip("torch")
    mesh_nodes, batch_nodes = node_env["mesh_nodes"], node_env["batch_nodes"]
    (first,) = mesh_nodes.PoseFactoryPoseProp().make(mesh_file="3d/box.glb", **WIDGETS)
    ball = tm().creation.icosphere(subdivisions=2, radius=0.15)  # core's MESH: Y-up tensors, a batch of 1
    core = types.SimpleNamespace(vertices=torch.tensor(ball.vertices[None], dtype=torch.float32),
                                 faces=torch.tensor(ball.faces[None]), vertex_counts=None, face_counts=None)
    (both,) = mesh_nodes.PoseFactoryPoseProp().make(mesh=core, props=first, **dict(WIDGETS, location_x=0.5))
    assert len(both) == 2 and len(first) == 1  # the earlier list is not changed
    args = dict(subject={"type": "mannequin", "height": 1.75, "build": "average"}, poses=["a_pose"],
                cameras={"type": "orbit", "views": 1, "elevation": 0}, width=128, height=128, depth=True,
                normal=False, seg=True, shaded=False, depth_range="batch", hands=True, face=True, sdxl_sticks=False,
                backend="local", project="demo", force=False)
    batch, bid = batch_nodes.PoseFactoryRequestPoseBatch().request(**args, props=both)
    _, plain_bid = batch_nodes.PoseFactoryRequestPoseBatch().request(**args)
    assert bid != plain_bid
    m, folder = loading.fetch_batch(node_env["settings"], "demo", bid, names=("parts",))
    assert [p["mesh"]["format"] for p in m["spec"]["props"]] == ["glb", "npz"]
    parts = loading._decode(folder, m, loading.select_entries(m), "parts", "gray")[0]
    assert {props.label(0), props.label(1)} <= set(np.unique(parts))
    with pytest.raises(SpecError, match=r"props 0 mesh|props\[0\]"):
        bad = [dict(first[0], mesh={"file": "/nonexistent/box.glb"})]
        batch_nodes.PoseFactoryRequestPoseBatch().request(**args, props=bad)


def test_cli_dry_run_hashes_a_prop_file_and_stores_nothing(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"storage": {"local_root": str(tmp_path / "store"), "cache_root": str(tmp_path / "c")},
                               "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")}}))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    raw = spec_with([{"mesh": str(box_file(tmp_path / "box.glb")), "location": [0, -0.5, 1]}])
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    assert cli.main(["render", str(tmp_path / "spec.json"), "--dry-run"]) == 0
    want = S.batch_id(props.resolve(raw, LocalStorage(tmp_path / "other"), "default"))
    assert f"default/{want}" in capsys.readouterr().out
    assert not (tmp_path / "store").exists()
    (tmp_path / "box.glb").unlink()
    assert cli.main(["render", str(tmp_path / "spec.json"), "--dry-run"]) != 0
    err = capsys.readouterr().err
    assert "props[0].mesh:" in err and "does not exist" in err, err
