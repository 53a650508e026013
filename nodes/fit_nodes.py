"""Pose From Keypoints: a 2D skeleton (POSE_KEYPOINT from any pack) fitted back onto the mannequin
(pose_factory.extract.keypoint_fit)."""
from __future__ import annotations

from ._common import CATEGORY
from pose_factory.extract import keypoint_fit
from pose_factory.render import openpose

CAT = f"{CATEGORY}/extract"


class PoseFactoryPoseFromKeypoints:
    DESCRIPTION = ("Turns a 2D skeleton (POSE_KEYPOINT from this pack, DWPose, SDPose, an OpenPose editor) into a "
                   "mannequin pose that plugs into Request Pose Batch like a preset: the rig's joint angles, within "
                   "their limits, fitted so its 18 body points project onto the given ones. Without cameras the "
                   "camera is estimated (50 mm lens, its height from an upright subject) and the pose comes back "
                   "as seen from the front view; with cameras (one per view) every view is fitted at once. What one "
                   "view cannot see (depth) is settled towards natural poses; report gives the residual per point "
                   "in pixels and names the limbs whose depth is ambiguous. Hands and face stay at rest.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_POSES", "STRING")
    RETURN_NAMES = ("poses", "report")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pose_keypoint": ("POSE_KEYPOINT",),
            "person": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip": "Which person of the frame (0 = first)."}),
            "index": ("INT", {"default": 0, "min": 0, "max": 100000,
                              "tooltip": "The frame (image) of the batch to fit; with views > 1 the first view."}),
            "views": ("INT", {"default": 1, "min": 1, "max": 64,
                              "tooltip": "How many views of the same moment to fit at once (needs cameras, one per "
                                         "view): frames index, index + view_step, ..."}),
            "view_step": ("INT", {"default": 1, "min": 1, "max": 100000,
                                  "tooltip": "Frames between two views of the same moment: 1 for a batch of one pose "
                                             "seen from several views; the batch's frame count for a view-major "
                                             "batch of several poses."}),
            "threshold": ("FLOAT", {"default": keypoint_fit.DEFAULT_THRESHOLD, "min": 0.0, "max": 1.0, "step": 0.05,
                                    "tooltip": "A point whose confidence is below this is missing."}),
        }, "optional": {
            "cameras": ("POSE_FACTORY_CAMERAS", {"tooltip": "The views' cameras (Camera List, Camera Orbit), one per "
                                                            "view; unlinked: one view, camera estimated."}),
        }}

    def make(self, pose_keypoint, person, index, views, view_step, threshold, cameras=None):
        frames = openpose.validate_pose_keypoint(pose_keypoint)
        picks = [int(index) + k * int(view_step) for k in range(int(views))]
        if picks[-1] >= len(frames):
            raise ValueError(f"index/views/view_step: frames {picks} asked for, allowed: 0 to {len(frames) - 1} "
                             f"(the POSE_KEYPOINT holds {len(frames)} frames)")
        chosen = [frames[i] for i in picks]
        fit_views = keypoint_fit.pose_keypoint_views(chosen, int(person), float(threshold))
        cams = None
        if cameras is not None:
            sizes = {(v[2], v[3]) for v in fit_views}
            if len(sizes) > 1:
                raise ValueError(f"pose_keypoint: the views have different canvas sizes {sorted(sizes)}, allowed: one")
            cams = keypoint_fit.cameras_from_spec(cameras, *sizes.pop())
            if len(cams) != len(fit_views):
                raise ValueError(f"cameras: got {len(cams)} cameras for {len(fit_views)} views, allowed: one per view "
                                 "(set views to the number of cameras)")
        result = keypoint_fit.fit_keypoints(fit_views, cams)
        report = keypoint_fit.report(result)
        entries = [result["pose"]]
        # the 3D viewer shows these poses after the run (pose_factory.viewer.remember)
        from pose_factory import viewer

        return {"ui": {"pose_factory_poses": [viewer.remember(entries)]}, "result": (entries, report)}


NODE_CLASS_MAPPINGS = {"PoseFactoryPoseFromKeypoints": PoseFactoryPoseFromKeypoints}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryPoseFromKeypoints": "Pose From Keypoints"}
