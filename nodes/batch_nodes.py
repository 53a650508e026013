"""RequestPoseBatch: builds the JobSpec from the spec nodes and runs it (local worker or RunPod);
an identical spec already in storage is not rendered again (DESIGN.md §3)."""
from __future__ import annotations

from ._common import (CATEGORY, check_project_widget, feet_input, get_settings, interrupt_check, log, node_project,
                      occluded_input, plain_error, progress_bar, project_input, send_final_on_error, send_message)
from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError

CAT = f"{CATEGORY}/batch"
BACKENDS = ["local", "runpod"]


NO_POSES = ("a pose list (Pose Preset, Pose Sequence, Motion Clip...) linked into Request Pose Batch's poses, or "
            "into the person's Scene node")


def spec_subjects(subject, poses) -> list:
    """The JobSpec's subjects of the node's subject (a Mannequin, a Custom Rig, or a Scene's
    people in order) and its poses: a person without its own poses takes them. SpecError names
    the person that has none."""
    if not isinstance(subject, dict):
        raise SpecError("subject", "got nothing usable", "a Mannequin, Custom Rig or Scene")
    people = list(subject["subjects"]) if subject.get("type") == "scene" else [subject]
    out = []
    for k, person in enumerate(people):
        person = dict(person)
        if "poses" not in person:
            if not poses:
                where = f"person {k}" if subject.get("type") == "scene" else "subject"
                raise SpecError("poses", f"{where} has no poses and none are linked here", NO_POSES)
            person["poses"] = list(poses)
        out.append(person)
    return out


def build_spec(subject, poses, cameras, width, height, depth=True, normal=True, seg=True, shaded=True,
               depth_range="batch", hands=True, face=True, sdxl_sticks=False, project="default",
               occluded="hide", props=None, storage=None, feet=False) -> dict:
    """The normalized JobSpec of the node's inputs (SpecError names the first wrong field). A
    rig subject's file is stored in the project's uploads (pose_factory.rigs.resolve; storage
    None: only hashed, a dry run) before the spec is normalized, as props' meshes are."""
    passes = ["openpose", "keypoints"]
    if depth:
        passes += ["depth", "depth16"]
    if normal:
        passes.append("normal")
    if seg:
        passes.append("seg")
    if shaded:
        passes.append("shaded")
    raw = {"schema_version": spec_mod.SPEC_SCHEMA_VERSION, "kind": "pose_batch", "project": project,
           "render": {"width": int(width), "height": int(height), "passes": passes, "depth_range": depth_range,
                      "openpose": {"hands": bool(hands), "face": bool(face), "sdxl_sticks": bool(sdxl_sticks),
                                   "occluded": occluded, **({"feet": True} if feet else {})}},
           "cameras": dict(cameras),
           "subjects": spec_subjects(subject, poses)}
    if props:  # stored meshes (pose_factory.mesh.props.resolve); none: the spec as before props existed
        raw["props"] = list(props)
    if any(s.get("type") == "rig" for s in raw["subjects"]):
        from pose_factory import rigs

        raw = rigs.resolve(raw, storage, project)
    return spec_mod.normalize_spec(raw)


def _has_rig(subject) -> bool:
    people = subject.get("subjects", []) if isinstance(subject, dict) and subject.get("type") == "scene" else [subject]
    return any(isinstance(p, dict) and p.get("type") == "rig" for p in people)


class PoseFactoryRequestPoseBatch:
    DESCRIPTION = ("Renders the subject (a Mannequin, a Custom Rig, or a Scene of up to 8 people) in every pose (one "
                   "frame each) from every camera, in Blender: OpenPose "
                   "images and keypoints, depth, normals, segmentation and a shaded reference. An identical "
                   "request is not rendered again (the batch id is a hash of the spec) unless force is on. "
                   "backend: local (the worker on this machine) or runpod (the serverless endpoint from the "
                   "environment/.env; credentials are never widgets). occluded: how the OpenPose images treat "
                   "joints the body covers (hide, show, depth); the keypoints keep them either way. Before it submits, the node shows the "
                   "job's estimate under its title (images, megapixels, render time, RunPod cost); a job over "
                   "the config's limits (limits.max_images, max_megapixels, max_render_s) is refused with the "
                   "cap and the value named. `python -m pose_factory render SPEC --dry-run` prints the same.")
    CATEGORY = CAT
    FUNCTION = "request"
    RETURN_TYPES = ("POSE_FACTORY_BATCH", "STRING")
    RETURN_NAMES = ("batch", "batch_id")
    OUTPUT_NODE = False
    # No IS_CHANGED (DESIGN.md §5): its inputs come by links, which IS_CHANGED never sees; ComfyUI's
    # own cache and the storage look-up already skip unchanged work.

    @classmethod
    def VALIDATE_INPUTS(cls, project=None):
        """Any project name (an old workflow's text, an API prompt's, one made after the page
        loaded): naming `project` here makes ComfyUI skip its list check (DESIGN.md §5)."""
        return check_project_widget(project)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "subject": ("POSE_FACTORY_SUBJECT", {"tooltip": "A Mannequin, a Custom Rig, or a Scene of several "
                                                                "people."}),
                "cameras": ("POSE_FACTORY_CAMERAS",),
                "width": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8}),
                "height": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8}),
                "depth": ("BOOLEAN", {"default": True, "tooltip": "ControlNet depth and 16-bit metric depth."}),
                "normal": ("BOOLEAN", {"default": True, "tooltip": "Normal maps in the three conventions."}),
                "seg": ("BOOLEAN", {"default": True, "tooltip": "Segmentation, subject mask and body-part labels."}),
                "shaded": ("BOOLEAN", {"default": True, "tooltip": "A clay reference render."}),
                "depth_range": (["batch", "image"], {"default": "batch",
                                                     "tooltip": "batch: one range for every image (no flicker)."}),
                "hands": ("BOOLEAN", {"default": True, "tooltip": "Draw hands in the OpenPose images."}),
                "face": ("BOOLEAN", {"default": True, "tooltip": "Draw the face in the OpenPose images."}),
                "sdxl_sticks": ("BOOLEAN", {"default": False,
                                            "tooltip": "Thicker limbs, as some SDXL OpenPose ControlNets want."}),
                "backend": (BACKENDS, {"default": "local"}),
                "project": project_input("The project the batch is stored in: a known project, new… or "
                                         "rename…; lowercase letters, digits, '-', '_' (others are dropped)."),
                "force": ("BOOLEAN", {"default": False, "tooltip": "Render again even if the batch exists."}),
            },
            "optional": {
                "poses": ("POSE_FACTORY_POSES", {"tooltip": "Every frame's pose; a Scene's person with poses of its "
                                                            "own keeps those. Needed unless every person has its own."}),
                **occluded_input(), "validate": ("BOOLEAN", {
                "default": False, "tooltip": "After rendering, MediaPipe reads the shaded renders and the PCK of its "
                                             "keypoints against ours goes into the manifest (needs shaded)."}),
                "props": ("POSE_FACTORY_PROPS", {"tooltip": "Meshes placed in the scene (Pose Prop): rendered in "
                                                            "every pass, they hide the joints behind them."}),
                **feet_input()},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def request(self, subject, poses=None, cameras=None, width=512, height=512, depth=True, normal=True, seg=True,
                shaded=True, depth_range="batch", hands=True, face=True, sdxl_sticks=False, backend="local",
                project="", force=False, occluded="hide", validate=False, props=None, unique_id=None, feet=False):
        # poses is optional (a Scene's people may each have their own); it keeps its place, so a call
        # written before (positional, as in a script) still means what it did
        from pose_factory.jobs.client import estimate as job_estimate, run_job

        if cameras is None:
            raise SpecError("cameras", "nothing linked", "a Camera Orbit, Camera List or Camera From Load 3D")
        settings = get_settings()
        project = node_project(project, settings)
        try:
            from pose_factory.settings import make_storage

            storage = make_storage(settings) if props or _has_rig(subject) else None
            if props:  # each prop's mesh stored in the project's uploads, named by its content
                from pose_factory.mesh import props as props_mod

                props = props_mod.resolve({"props": list(props)}, storage, project)["props"]
            spec = build_spec(subject, poses, cameras, width, height, depth, normal, seg, shaded, depth_range,
                              hands, face, sdxl_sticks, project, occluded, props, storage=storage, feet=bool(feet))
        except SpecError as e:  # in the node's words: "frame 2 l_elbow flex: ...", not a JobSpec path
            raise plain_error(e) from None
        bid = spec_mod.batch_id(spec)
        estimate = job_estimate(spec, settings, backend)["text"]  # learned from this machine's renders
        log.info("3D Pose Factory: batch %s/%s: %s", project, bid, estimate)
        send_message("pose_factory.progress", {"node": unique_id, "state": "queued", "done": 0, "total": 0,
                                               "batch_id": bid, "project": project, "estimate": estimate})
        state = {"bar": None, "total": None}

        def on_progress(event):
            total = int(event.get("total") or 0)
            done = int(event.get("done") or 0)
            if total and state["total"] != total:
                state["bar"], state["total"] = progress_bar(total), total
            if state["bar"] is not None and total:
                state["bar"].update_absolute(min(done, total), total)
            send_message("pose_factory.progress", {"node": unique_id, "state": event.get("state"), "done": done,
                                                   "total": total, "batch_id": bid, "project": project,
                                                   "estimate": estimate})

        # refused by the limits, cancelled or failed: the last message says so (the sidebar follows it)
        with send_final_on_error({"node": unique_id, "batch_id": bid, "project": project}):
            result = run_job(spec, project=project, force=bool(force), backend=backend, settings=settings,
                             on_progress=on_progress, check_cancel=interrupt_check(), validate=bool(validate))
        if result.batch_id != bid:  # the client hashes the same spec: a mismatch is a bug, say so
            log.warning("3D Pose Factory: batch id %s from the client, %s expected", result.batch_id, bid)
        images = len(result.manifest["entries"])  # every (view, frame): "completed N/N"
        if state["bar"] is None or state["total"] != images:
            state["bar"] = progress_bar(images)
        if state["bar"] is not None:
            state["bar"].update_absolute(images, images)
        send_message("pose_factory.progress", {"node": unique_id, "state": "completed", "done": images,
                                               "total": images, "batch_id": result.batch_id,
                                               "project": result.project, "rendered": result.rendered})
        log.info("3D Pose Factory: batch %s/%s %s", result.project, result.batch_id,
                 "rendered" if result.rendered else "already in storage")
        return ({"project": result.project, "batch_id": result.batch_id}, result.batch_id)


NODE_CLASS_MAPPINGS = {"PoseFactoryRequestPoseBatch": PoseFactoryRequestPoseBatch}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryRequestPoseBatch": "Request Pose Batch"}
