"""POSE_KEYPOINT tools: draws any pack's POSE_KEYPOINT as ControlNet's OpenPose annotator does."""
from __future__ import annotations

import numpy as np

from ._common import CATEGORY, feet_input, hide_input, image_tensor, occluded_input
from pose_factory.render import hide as hiding
from pose_factory.render import openpose

CAT = f"{CATEGORY}/keypoints"


class PoseFactoryPoseKeypointsToImage:
    DESCRIPTION = ("Draws POSE_KEYPOINT (from this pack or any other: DWPose, OpenPose estimators, editors) as "
                   "ControlNet's OpenPose annotator does: one image per frame, on its canvas size. Points with "
                   "confidence below 1 are not drawn. sdxl_sticks: thicker limbs for some SDXL ControlNets. "
                   "occluded: joints the body covers (kept in this pack's keypoints): hide, show, or depth "
                   "(far to near); other packs' keypoints draw the same in all three. feet: the foot points "
                   "(foot_keypoints_2d, ours or core's SDPose's) as core's whole-body drawer draws them. hide: "
                   "joints and groups left out (face, left_hand, l_wrist, 1:right_arm...).")
    CATEGORY = CAT
    FUNCTION = "draw"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pose_keypoint": ("POSE_KEYPOINT",),
            "hands": ("BOOLEAN", {"default": True}),
            "face": ("BOOLEAN", {"default": True}),
            "sdxl_sticks": ("BOOLEAN", {"default": False}),
        }, "optional": {**occluded_input(), **feet_input(), **hide_input()}}

    @classmethod
    def VALIDATE_INPUTS(cls, hide=None):
        return hiding.validate_hide(hide)

    def draw(self, pose_keypoint, hands, face, sdxl_sticks, occluded="hide", feet=False, hide=""):
        frames = hiding.hide_frames(openpose.validate_pose_keypoint(pose_keypoint), hide)
        if not frames:
            raise ValueError("pose_keypoint: got an empty list, allowed: at least one frame")
        sizes = {(int(f["canvas_width"]), int(f["canvas_height"])) for f in frames}
        if len(sizes) > 1:
            raise ValueError(f"pose_keypoint: frames have different canvas sizes {sorted(sizes)}, allowed: one size "
                             "(an IMAGE batch holds images of one size)")
        images = np.stack([openpose.draw_pose(f, hands=bool(hands), face=bool(face), sdxl_sticks=bool(sdxl_sticks),
                                              occluded=occluded, feet=bool(feet)) for f in frames])
        return (image_tensor(images),)


NODE_CLASS_MAPPINGS = {"PoseFactoryPoseKeypointsToImage": PoseFactoryPoseKeypointsToImage}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryPoseKeypointsToImage": "Pose Keypoints to Image"}
