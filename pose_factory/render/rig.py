"""The mannequin's skeleton: joints, their degrees of freedom and limits, and forward kinematics.

Pure numpy, shared by the core (keypoints, framing, validation) and by Blender (the armature is
built from these numbers), so both sides agree on every joint to the last bit.

Frames: world X is the subject's left, -Y is where the subject faces, Z is up, the floor is z=0.
In the rest pose the subject stands straight, arms hanging, palms towards the thighs, and every
joint's frame is the world frame; a joint's rotation turns everything below it. Each degree of
freedom (DOF) is a rotation about a fixed axis of the joint's rest frame; a joint's DOFs apply in
the order listed (the first is outermost), angles in degrees. Left/right joints share DOF names
and signs (the right side is the mirror image), so "abduct 40" lifts either arm sideways.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import shape as shape_mod

REFERENCE_HEIGHT = 1.75  # metres: the rest positions below are for this height, then scaled
SIDES = ("l", "r")


@dataclass(frozen=True)
class Dof:
    name: str
    axis: tuple  # unit axis in the LEFT (or centre) joint's rest frame
    lo: float
    hi: float
    meaning: str


@dataclass(frozen=True)
class Joint:
    name: str
    parent: str | None
    rest: tuple  # rest position in metres for REFERENCE_HEIGHT (left side for l_/r_ pairs)
    dofs: tuple = field(default=())


X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
NX, NY, NZ = (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)


def _unit(v):
    v = np.asarray(v, float)
    return tuple(float(c) for c in v / np.linalg.norm(v))


# --- DOF tables (documented in docs/poses.md) ---------------------------------------------
ROOT_DOFS = (
    Dof("yaw", Z, -180, 180, "turn the whole body to its left"),
    Dof("pitch", X, -180, 180, "tip the whole body forward (90 = lying face down)"),
    Dof("roll", Y, -180, 180, "tip the whole body to its left side"),
)
SPINE_DOFS = (
    Dof("flex", X, -30, 60, "bend forward"),
    Dof("side", Y, -35, 35, "bend to the subject's left"),
    Dof("twist", Z, -40, 40, "turn the upper body to the subject's left"),
)
CHEST_DOFS = (
    Dof("flex", X, -25, 40, "bend forward"),
    Dof("side", Y, -25, 25, "bend to the subject's left"),
    Dof("twist", Z, -35, 35, "turn to the subject's left"),
)
NECK_DOFS = (
    Dof("flex", X, -45, 50, "nod forward (chin down)"),
    Dof("side", Y, -35, 35, "tilt to the subject's left"),
    Dof("twist", Z, -70, 70, "turn the head to the subject's left"),
)
HEAD_DOFS = (
    Dof("flex", X, -30, 30, "nod forward"),
    Dof("side", Y, -20, 20, "tilt to the subject's left"),
)
SHOULDER_DOFS = (
    Dof("flex", NX, -60, 180, "raise the arm forward (180 = straight up)"),
    Dof("abduct", NY, -30, 180, "raise the arm sideways away from the body"),
    Dof("twist", Z, -90, 90, "rotate the arm outward (external rotation)"),
)
ELBOW_DOFS = (
    Dof("flex", NX, -5, 150, "bend the elbow (0 = straight)"),
    Dof("twist", Z, -90, 90, "turn the forearm palm-forward (supination)"),
)
WRIST_DOFS = (
    Dof("flex", Y, -70, 80, "bend the hand towards the palm"),
    Dof("deviate", NX, -35, 25, "bend the hand towards the thumb"),
)
HIP_DOFS = (
    Dof("flex", NX, -30, 130, "raise the thigh forward"),
    Dof("abduct", NY, -30, 60, "move the leg sideways away from the body"),
    Dof("twist", Z, -45, 60, "rotate the leg outward"),
)
KNEE_DOFS = (Dof("flex", X, -5, 155, "bend the knee (0 = straight)"),)
ANKLE_DOFS = (
    Dof("flex", NX, -50, 30, "lift the toes (negative: point the foot)"),
    Dof("invert", Y, -20, 35, "turn the sole inward"),
)
# Fingers hang down in the rest pose with the palm facing the body (-X for the left hand), so a
# curl turns the finger about the palm's front-back axis (Y) towards -X.
FINGER_BASE_DOFS = (
    Dof("curl", Y, -20, 95, "bend at the knuckle towards the palm"),
    Dof("spread", NX, -25, 25, "spread towards the thumb"),
)
FINGER_DOFS = (Dof("curl", Y, -5, 110, "bend towards the palm"),)
THUMB_BASE_DOFS = (
    Dof("curl", _unit((0.3, 0.55, -0.35)), -20, 60, "swing the thumb across the palm"),
    Dof("spread", _unit((0.0, 0.5, 0.5)), -20, 50, "lift the thumb away from the palm"),
)
THUMB_DOFS = (Dof("curl", _unit((0.35, 0.6, -0.45)), -10, 90, "bend the thumb towards the palm"),)

FINGERS = ("thumb", "index", "middle", "ring", "pinky")

# --- rest positions (left side, metres, for a 1.75 m subject) ------------------------------
_CENTRE = [
    Joint("root", None, (0.0, 0.0, 0.95), ROOT_DOFS),  # the pelvis centre
    Joint("spine", "root", (0.0, 0.01, 1.06), SPINE_DOFS),
    Joint("chest", "spine", (0.0, 0.01, 1.24), CHEST_DOFS),
    Joint("neck", "chest", (0.0, 0.02, 1.46), NECK_DOFS),
    Joint("head", "neck", (0.0, 0.015, 1.57), HEAD_DOFS),
]
_LEFT = [
    Joint("shoulder", "chest", (0.185, 0.02, 1.425), SHOULDER_DOFS),
    Joint("elbow", "shoulder", (0.19, 0.025, 1.14), ELBOW_DOFS),
    Joint("wrist", "elbow", (0.19, 0.0, 0.885), WRIST_DOFS),
    Joint("hip", "root", (0.092, 0.0, 0.915), HIP_DOFS),
    Joint("knee", "hip", (0.095, -0.005, 0.5), KNEE_DOFS),
    Joint("ankle", "knee", (0.095, 0.02, 0.085), ANKLE_DOFS),
    Joint("toe", "ankle", (0.1, -0.145, 0.02)),  # end point: the ball/toes
    # Hand (hanging): thumb in front (-Y), pinky behind, palm facing -X.
    Joint("thumb1", "wrist", (0.183, -0.022, 0.862), THUMB_BASE_DOFS),
    Joint("thumb2", "thumb1", (0.172, -0.045, 0.832), THUMB_DOFS),
    Joint("thumb3", "thumb2", (0.166, -0.058, 0.801), THUMB_DOFS),
    Joint("thumb4", "thumb3", (0.162, -0.066, 0.775)),
    Joint("index1", "wrist", (0.19, -0.03, 0.79), FINGER_BASE_DOFS),
    Joint("index2", "index1", (0.19, -0.032, 0.747), FINGER_DOFS),
    Joint("index3", "index2", (0.19, -0.033, 0.722), FINGER_DOFS),
    Joint("index4", "index3", (0.19, -0.034, 0.699)),
    Joint("middle1", "wrist", (0.19, -0.009, 0.787), FINGER_BASE_DOFS),
    Joint("middle2", "middle1", (0.19, -0.009, 0.739), FINGER_DOFS),
    Joint("middle3", "middle2", (0.19, -0.009, 0.711), FINGER_DOFS),
    Joint("middle4", "middle3", (0.19, -0.009, 0.686)),
    Joint("ring1", "wrist", (0.19, 0.012, 0.792), FINGER_BASE_DOFS),
    Joint("ring2", "ring1", (0.19, 0.013, 0.747), FINGER_DOFS),
    Joint("ring3", "ring2", (0.19, 0.014, 0.72), FINGER_DOFS),
    Joint("ring4", "ring3", (0.19, 0.015, 0.697)),
    Joint("pinky1", "wrist", (0.19, 0.031, 0.8), FINGER_BASE_DOFS),
    Joint("pinky2", "pinky1", (0.19, 0.033, 0.765), FINGER_DOFS),
    Joint("pinky3", "pinky2", (0.19, 0.035, 0.744), FINGER_DOFS),
    Joint("pinky4", "pinky3", (0.19, 0.036, 0.724)),
]


def _sided(j: Joint, side: str) -> Joint:
    parent = j.parent if j.parent in {c.name for c in _CENTRE} else f"{side}_{j.parent}"
    x, y, z = j.rest
    return Joint(f"{side}_{j.name}", parent, (x if side == "l" else -x, y, z), j.dofs)


JOINTS: dict[str, Joint] = {j.name: j for j in _CENTRE}
for _side in SIDES:
    for _j in _LEFT:
        JOINTS[f"{_side}_{_j.name}"] = _sided(_j, _side)
JOINT_NAMES = tuple(JOINTS)  # parents always come before children
JOINT_INDEX = {n: i for i, n in enumerate(JOINT_NAMES)}
PARENT_INDEX = np.array([JOINT_INDEX[JOINTS[n].parent] if JOINTS[n].parent else -1 for n in JOINT_NAMES])


def dof(joint: str, name: str) -> Dof:
    """The degree of freedom called name of a joint (its axis and limits)."""
    return next(d for d in JOINTS[joint].dofs if d.name == name)


def side_of(joint: str) -> str | None:
    return joint[0] if joint[:2] in ("l_", "r_") else None


def mirror_name(joint: str) -> str:
    s = side_of(joint)
    return joint if s is None else ("r_" if s == "l" else "l_") + joint[2:]


def rotation(axis, degrees: float) -> np.ndarray:
    """Rodrigues: rotation matrix about a unit axis."""
    a = np.asarray(axis, float)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def dof_axis(joint: str, dof: Dof) -> np.ndarray:
    """The DOF's axis for this joint: the right side mirrors X and, being a reflection, flips the
    sense of rotation, which is the same as the axis (x, -y, -z)."""
    a = np.asarray(dof.axis, float)
    return a * np.array([1.0, -1.0, -1.0]) if side_of(joint) == "r" else a


def local_rotation(joint: str, angles: dict) -> np.ndarray:
    r = np.eye(3)
    for dof in JOINTS[joint].dofs:
        deg = angles.get(dof.name, 0.0)
        if deg:
            r = r @ rotation(dof_axis(joint, dof), deg)
    return r


# --- body proportions ------------------------------------------------------------------
BUILDS = {"slim": 0.86, "average": 1.0, "heavy": 1.22}  # girth factor for the mesh


# Reference heights (metres, 1.75 m subject) that body shapes (shape.py) scale between: the top of
# the skull (mannequin.Head: centre 1.652 + half-height 0.118), the head joint (the skull's base),
# the neck joint and the hip joints.
CROWN_Z = 1.77
HEAD_Z, NECK_Z, HIP_Z = JOINTS["head"].rest[2], JOINTS["neck"].rest[2], JOINTS["l_hip"].rest[2]


class Proportions:
    """A body shape (shape.py) as factors and offsets on the reference body, in reference units
    (multiply by height / REFERENCE_HEIGHT afterwards). Every factor is exactly 1.0 and every offset
    exactly 0.0 for the default shape, so the default body is computed to the last bit as before.

    Regions: the head (the head joint's children: the skull and face) scales by `head` about the
    head joint; everything below it by `body` (chosen so the crown stays at CROWN_Z: a bigger head
    makes the body smaller); the legs (hip joints down, feet included) by `legs` about the floor
    under each hip; the torso between the hip joints and the neck joint stretches vertically by
    `torso` so that it joins both; the arms (elbows, wrists, hands) by `arms` about each shoulder.
    Widths: the shoulder joints' distance from the middle by shoulder_width, the hip joints' by
    hip_width."""

    def __init__(self, shape: dict | None = None):
        v = shape_mod.resolve(shape)
        self.values = v
        self.head = shape_mod.DEFAULT_HEAD_RATIO / v["head_ratio"]
        self.body = 1.0 - (CROWN_Z - HEAD_Z) * (self.head - 1.0) / HEAD_Z
        self.legs = self.body * v["leg_length"]
        self.arms = self.body * v["arm_length"]
        self.torso = self.body * (1.0 + HIP_Z * (1.0 - v["leg_length"]) / (NECK_Z - HIP_Z))
        self.torso_dz = HIP_Z * self.legs - HIP_Z * self.torso
        self.shoulder_width, self.hip_width = v["shoulder_width"], v["hip_width"]
        head = np.asarray(JOINTS["head"].rest, float)
        self.head_offset = head * self.body - head * self.head

    def torso_z(self, z):
        """A reference height between the hips and the neck (the torso's meshes) on this body."""
        return z * self.torso + self.torso_dz

    def head_point(self, p) -> np.ndarray:
        """A reference point of the head (skull, face) on this body."""
        return np.asarray(p, float) * self.head + self.head_offset

    def joints(self, ref: np.ndarray) -> np.ndarray:
        """(J, 3) reference rest positions (JOINT_NAMES order) moved onto this body."""
        out = np.empty_like(ref)
        idx = JOINT_INDEX
        for i, name in enumerate(JOINT_NAMES):
            x, y, z = ref[i]
            if name == "head":
                out[i] = ref[i] * self.body
            elif side_of(name) is None or name[2:] == "shoulder":
                w = self.shoulder_width if name[2:] == "shoulder" else 1.0
                out[i] = (x * (self.body * w), y * self.body, self.torso_z(z))
        for side in SIDES:
            sh, hp = ref[idx[f"{side}_shoulder"]], ref[idx[f"{side}_hip"]]
            arm_offset = out[idx[f"{side}_shoulder"]] - sh * self.arms
            leg_offset = np.array([hp[0] * (self.body * self.hip_width) - hp[0] * self.legs, 0.0, 0.0])
            for j in _LEFT:
                if j.name == "shoulder":
                    continue
                i = idx[f"{side}_{j.name}"]
                leg = j.name in ("hip", "knee", "ankle", "toe")
                out[i] = ref[i] * self.legs + leg_offset if leg else ref[i] * self.arms + arm_offset
        return out


def rest_positions(height: float, shape: dict | None = None) -> np.ndarray:
    """(J, 3) rest positions scaled to the subject's height (feet on the floor); shape: a body shape
    (shape.normalize_shape; None = today's body)."""
    s = height / REFERENCE_HEIGHT
    ref = np.array([JOINTS[n].rest for n in JOINT_NAMES])
    return (ref if shape is None else Proportions(shape).joints(ref)) * s


@dataclass
class Posed:
    positions: np.ndarray  # (J, 3) world joint positions
    rotations: np.ndarray  # (J, 3, 3) world rotation of each joint relative to its rest frame

    def position(self, name: str) -> np.ndarray:
        return self.positions[JOINT_INDEX[name]]

    def transform_points(self, joint_idx: np.ndarray, rest_pts: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Rigidly move rest-pose points bound to joints (skinning with weight 1)."""
        r = self.rotations[joint_idx]
        local = rest_pts - rest[joint_idx]
        return np.einsum("nij,nj->ni", r, local) + self.positions[joint_idx]


def forward_kinematics(rest: np.ndarray, angles: dict, offset=(0.0, 0.0, 0.0)) -> Posed:
    """angles: {joint: {dof: degrees}} (already validated). offset moves the root."""
    n = len(JOINT_NAMES)
    pos = np.zeros((n, 3))
    rot = np.zeros((n, 3, 3))
    for i, name in enumerate(JOINT_NAMES):
        local = local_rotation(name, angles.get(name, {}))
        p = PARENT_INDEX[i]
        if p < 0:
            rot[i] = local
            pos[i] = rest[i] + np.asarray(offset, float)
        else:
            rot[i] = rot[p] @ local
            pos[i] = pos[p] + rot[p] @ (rest[i] - rest[p])
    return Posed(pos, rot)
