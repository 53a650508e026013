"""The mesh nodes through ComfyUI's contract: Multi-View Prompts, Request Mesh From Images on the
mannequin's 8 canonical views (the real local worker), Render Mesh Passes of its result and of a
core MESH, read by the Depth/Normal loader's code."""
import json
import types

import numpy as np
import pytest

from pose_factory import loading, render
from pose_factory import settings as settings_mod
from pose_factory.errors import SpecError
from pose_factory.mesh import views
from pose_factory.storage import LocalStorage, batch_prefix


@pytest.fixture(scope="module")
def mesh_nodes():
    from nodes import mesh_nodes

    return mesh_nodes


def test_multi_view_prompts_give_the_views_and_their_rig(mesh_nodes):
    node = mesh_nodes.PoseFactoryMultiViewPrompts()
    prompts, cams, names = node.make("a red vase", "8")
    assert len(prompts) == 8 and prompts[0].startswith("a red vase, front view") and "left side" in prompts[2]
    assert all("neutral" in p for p in prompts) and cams == views.rig(8) and cams["views"] == 8
    assert mesh_nodes.PoseFactoryMultiViewPrompts.OUTPUT_IS_LIST == (True, False, False)
    with pytest.raises(SpecError, match="subject: empty prompt"):
        node.make("  ", "4")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mesh_nodes")
    cfg = tmp / "config.yaml"
    cfg.write_text(json.dumps({"data_root": str(tmp / "data"), "project": "demo"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("POSE_FACTORY_CONFIG", str(cfg))
    settings = settings_mod.load_settings()
    yield {"tmp": tmp, "settings": settings, "storage": LocalStorage(settings["storage"]["local_root"])}
    from pose_factory.jobs import client

    client.close_clients()
    mp.undo()


@pytest.mark.blender
def test_images_to_mesh_to_passes_through_the_nodes(mesh_nodes, env):
    torch = pytest.importorskip("torch")
    storage = env["storage"]
    spec = {"render": {"width": 192, "height": 192, "passes": ["seg", "shaded"]}, "cameras": views.rig(8),
            "subjects": [{"poses": ["a_pose"]}]}
    m, _ = render.render_batch(spec, storage, project="demo")
    folder = storage.local_path(batch_prefix("demo", m["batch_id"]))
    shaded = loading._decode(folder, m, loading.select_entries(m), "shaded", "rgb")
    images = torch.from_numpy(shaded).float() / 255.0
    out = mesh_nodes.PoseFactoryRequestMeshFromImages().request(
        images, "visual_hull", "draft", "glb", 5, 8000, True, "local", "demo", False,
        batch={"project": "demo", "batch_id": m["batch_id"]}, unique_id="7")
    ref, model_file, bid = out["result"]
    assert model_file == f"pose_factory/{bid}.glb"
    glb = (env["tmp"] / "data" / "output" / model_file)
    assert glb.is_file() and glb.read_bytes()[:4] == b"glTF" and ref["file"] == str(glb)
    # the same mesh as a prop of a pose scene (Pose Prop): the batch's stored GLB, stored again by content
    from pose_factory.mesh import props

    (prop,) = mesh_nodes.PoseFactoryPoseProp().make(0.5, 0.0, 0.0, 0.0, 0.0, 90.0, 0.5, "smooth", pose_factory_mesh=ref)
    stored = props.resolve({"props": prop}, storage, "demo")["props"][0]["mesh"]
    assert stored["format"] == "glb" and storage.get_bytes(props.upload_key("demo", stored)) == glb.read_bytes()
    # its passes from 4 new views, as the example workflow does
    cams = {"type": "orbit", "views": 4, "elevation": 20, "start_azimuth": 45}
    batch, pass_bid = mesh_nodes.PoseFactoryRenderMeshPasses().render(cams, 128, 128, "batch", "smooth", "demo", False,
                                                                      pose_factory_mesh=ref)
    pm = loading.fetch_batch(env["settings"], "demo", pass_bid, names=("mask", "depth"))[0]
    assert len(pm["views"]) == 4 and pm["spec"]["kind"] == "mesh_passes"
    # core's MESH: the same geometry as tensors, Y-up, one item
    from pose_factory.mesh import meshdata

    v, f = meshdata.load_file(glb)
    yup = meshdata.z_up_to_y_up(v)
    core = types.SimpleNamespace(vertices=torch.tensor(yup[None], dtype=torch.float32),
                                 faces=torch.tensor(f[None]), vertex_counts=None, face_counts=None)
    _, core_bid = mesh_nodes.PoseFactoryRenderMeshPasses().render(cams, 128, 128, "batch", "smooth", "demo", False,
                                                                  mesh=core)
    cm, cfolder = loading.fetch_batch(env["settings"], "demo", core_bid, names=("mask",))
    pm, pfolder = loading.fetch_batch(env["settings"], "demo", pass_bid, names=("mask",))
    a = loading._decode(cfolder, cm, loading.select_entries(cm), "mask", "gray")
    b = loading._decode(pfolder, pm, loading.select_entries(pm), "mask", "gray")
    assert (a == b).mean() > 0.995 and (a > 0).mean() > 0.02
    with pytest.raises(SpecError, match="exactly one of mesh, pose_factory_mesh, mesh_file"):
        mesh_nodes.PoseFactoryRenderMeshPasses().render(cams, 128, 128, "batch", "smooth", "demo", False)
    with pytest.raises(SpecError, match="no file under ComfyUI's input or output folder"):
        mesh_nodes.PoseFactoryRenderMeshPasses().render(cams, 128, 128, "batch", "smooth", "demo", False,
                                                        mesh_file="../../etc/passwd")
