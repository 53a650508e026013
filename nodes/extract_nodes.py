"""MediaPipe nodes: Extract Pose, Pose From Photo and Posture Analysis. MediaPipe runs in the local worker (the
worker environment, its own process; DESIGN.md §2), never in ComfyUI's Python: these nodes send
the images to it as PNGs and draw what comes back with the renders' own drawing code."""
from __future__ import annotations

import base64
import io
import json

import numpy as np

from ._common import CATEGORY, get_settings, image_tensor, interrupt_check
from pose_factory.render import openpose
from pose_factory.extract import posture as P

CAT = f"{CATEGORY}/extract"
MEASURED = [("front_view", a) for a in P.FRONT_ANGLES] + [("side_view", a) for a in P.SIDE_ANGLES]


def _png_b64(image) -> str:
    """One IMAGE (H, W, 3) float tensor in 0..1 → base64 PNG."""
    from PIL import Image

    arr = (np.clip(image.cpu().numpy(), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., :3]).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _worker(job_input: dict) -> dict:
    from pose_factory.jobs.client import JobFailed, run_worker_job

    try:
        return run_worker_job(job_input, settings=get_settings(), check_cancel=interrupt_check())
    except JobFailed as e:
        raise RuntimeError(f"pose extraction runs in the local worker (the worker environment with "
                           f"mediapipe 0.10.21, config worker_python): {e}") from None


class PoseFactoryExtractPose:
    DESCRIPTION = ("Finds the person in each image with MediaPipe's pose model (offline, in the local worker) and "
                   "returns the OpenPose skeleton drawn exactly like this pack's renders, plus POSE_KEYPOINT. "
                   "hands: MediaPipe's hand model too. face: OpenPose's 70 face points (68 + the pupils) from "
                   "MediaPipe's face mesh, drawn as white dots. An image with no person gives a black skeleton and "
                   "a frame with no people.")
    CATEGORY = CAT
    FUNCTION = "extract"
    RETURN_TYPES = ("IMAGE", "POSE_KEYPOINT", "STRING")
    RETURN_NAMES = ("skeleton", "pose_keypoint", "info")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "hands": ("BOOLEAN", {"default": False}),
                             "sdxl_sticks": ("BOOLEAN", {"default": False})},
                "optional": {"face": ("BOOLEAN", {"default": False,
                                                  "tooltip": "OpenPose's 70 face points from MediaPipe's face mesh"})}}

    def extract(self, image, hands, sdxl_sticks, face=False):
        out = _worker({"extract": {"images": [_png_b64(im) for im in image], "hands": bool(hands), "face": bool(face)}})
        frames = out["frames"]
        skel = np.stack([openpose.draw_pose(f, hands=bool(hands), face=bool(face), sdxl_sticks=bool(sdxl_sticks))
                         for f in frames])
        faces = sum(bool(p["face_keypoints_2d"]) for f in frames for p in f["people"])
        info = (f"MediaPipe backend: {out.get('backend')} ({out.get('model')}); person found in "
                f"{sum(out['found'])} of {len(frames)} images" + (f"; a face in {faces}" if face else "")
                + (f"; {out['note']}" if out.get("note") else ""))
        return image_tensor(skel), frames, info


class PoseFactoryPoseFromPhoto:
    DESCRIPTION = ("Turns the person in each photo into a mannequin pose (one frame per image) that plugs into Request "
                   "Pose Batch like a preset: MediaPipe's 3D world landmarks (in the local worker) fitted onto the "
                   "mannequin's joints within their limits, the photo's camera taken as the front view (azimuth 0). "
                   "info lists the fit's residual per bone in degrees.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_POSES", "STRING")
    RETURN_NAMES = ("poses", "info")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def make(self, image):
        from pose_factory.render import poses as poses_mod

        out = _worker({"extract": {"images": [_png_b64(im) for im in image], "fit": True}})
        missing = [i for i, f in enumerate(out["fits"]) if f is None]
        if missing:
            raise ValueError(f"image: no person found in image(s) {', '.join(map(str, missing))} of the batch "
                             f"(MediaPipe, {out.get('backend')} backend)")
        entries, lines = [], []
        for i, fit in enumerate(out["fits"]):
            entries.append(poses_mod.normalize_pose_entry(fit["pose"], f"image {i}"))
            worst = sorted(fit["residual_deg"].items(), key=lambda kv: -kv[1])
            lines.append(f"image {i}: median residual {fit['median_deg']:.1f}°; per bone: "
                         + ", ".join(f"{k} {v:.1f}°" for k, v in worst))
        # the 3D viewer shows these poses after the run (pose_factory.viewer.remember)
        from pose_factory import viewer

        return {"ui": {"pose_factory_poses": [viewer.remember(entries)]}, "result": (entries, "\n".join(lines))}


def _annotate(image: np.ndarray, pts, view: str) -> np.ndarray:
    """The measured lines on a copy of the image: tilts in yellow, leans in cyan."""
    import cv2

    img = np.ascontiguousarray(image.copy())
    p = np.asarray(pts, float)

    def mid(a, b):
        return (p[a] + p[b]) / 2

    def line(a, b, colour):
        cv2.line(img, tuple(int(round(c)) for c in a), tuple(int(round(c)) for c in b), colour, 2, cv2.LINE_AA)

    thick = (255, 220, 0)
    if view == "front":
        for r, l in ((P.R_SH, P.L_SH), (P.R_HIP, P.L_HIP), (P.R_EAR, P.L_EAR)):
            line(p[r], p[l], thick)
        line(mid(P.R_HIP, P.L_HIP), mid(P.R_SH, P.L_SH), (0, 220, 255))
    else:
        chain = [mid(P.R_ANKLE, P.L_ANKLE), mid(P.R_KNEE, P.L_KNEE), mid(P.R_HIP, P.L_HIP),
                 mid(P.R_SH, P.L_SH), mid(P.R_EAR, P.L_EAR)]
        for a, b in zip(chain, chain[1:]):
            line(a, b, (0, 220, 255))
    return img


class PoseFactoryPostureAnalysis:
    DESCRIPTION = ("The posture API's angles (docs/posture.md) from a front and a side photo, measured by MediaPipe "
                   "in the local worker: the JSON answer, each angle in degrees, and a preview with the measured "
                   "lines drawn (front and side side by side).")
    CATEGORY = CAT
    FUNCTION = "analyse"
    RETURN_TYPES = ("STRING",) + ("FLOAT",) * len(MEASURED) + ("IMAGE",)
    RETURN_NAMES = ("json",) + tuple(f"{v.split('_')[0]}_{a}" for v, a in MEASURED) + ("preview",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"front_image": ("IMAGE",), "side_image": ("IMAGE",)}}

    def analyse(self, front_image, side_image):
        out = _worker({"front": _png_b64(front_image[0]), "side": _png_b64(side_image[0]), "points": True})
        if out.get("status") != "success":
            raise ValueError(out.get("message") or out.get("error") or "posture analysis failed")
        pics = []
        for view, t in (("front", front_image[0]), ("side", side_image[0])):
            arr = (np.clip(t.cpu().numpy(), 0, 1) * 255 + 0.5).astype(np.uint8)
            pics.append(_annotate(arr, out["points"][f"{view}_view"], view))
        h = max(p.shape[0] for p in pics)
        pics = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in pics]
        answer = {k: out[k] for k in ("status", "data", "message")}
        angles = tuple(float(out["data"][v][a]) for v, a in MEASURED)
        return (json.dumps(answer, indent=2),) + angles + (image_tensor(np.concatenate(pics, axis=1)[None]),)


NODE_CLASS_MAPPINGS = {"PoseFactoryExtractPose": PoseFactoryExtractPose, "PoseFactoryPoseFromPhoto": PoseFactoryPoseFromPhoto,
                       "PoseFactoryPostureAnalysis": PoseFactoryPostureAnalysis}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryExtractPose": "Extract Pose (MediaPipe) (3D Pose Factory)",
                              "PoseFactoryPoseFromPhoto": "Pose From Photo (3D Pose Factory)",
                              "PoseFactoryPostureAnalysis": "Posture Analysis (3D Pose Factory)"}
