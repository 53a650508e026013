"""Posing a user's rig with our poses: numpy only, shared by the Blender side (user_rig.py), which
measures the rig's rest bones and sets the posed ones, and by the tests.

The rig's rest pose is measured, never assumed. Its frame comes from its bones: left from the
thighs' (and upper arms') heads right to left, up from the hips to the neck/head, so a rig facing
+Y, -Y, +Z or -Z in its file (VRM 0.x and 1.0 differ) turns to face -Y as the mannequin does
("canonical": X the subject's left, Z up). Every mapped bone's posed world rotation is
``R_j @ A_j @ Q_b``: Q_b its canonical rest rotation, A_j its parent's alignment followed by the
smallest rotation turning the rig's rest segment (the bone's head to the head of the bone mapped to
the joint's child) onto ours (so a hand's twist follows its forearm's), and
R_j our forward kinematics' world rotation of joint j (rig.Posed). So an A-pose and a T-pose rig
take a preset the same way. A bone no map names keeps its rest transform relative to its parent;
a mapped bone's head follows its parent's posed transform (the rig's own proportions), the root's
head moves with the pose's offset. Grounding (the lowest deformed vertex on z = 0) needs the
skinned mesh and is done by the Blender side.

Keypoints (the mannequin's 136, mannequin.py's layout) come from the posed bone matrices: a joint
at its bone's head, the neck midway between the shoulders, finger tips at the tip bone's head or
the last finger bone's tail, the eyes at eye bones when mapped; the nose, ears, face and (without
eye bones) eyes are the mannequin's head points scaled to the rig's head (its height above the
head bone) and carried by the head bone: estimated, and marked so. The foot points (big toe,
small toe, heel) are the mannequin's scaled to the rig's foot (Retarget._estimated_feet), carried
by the toe and ankle bones: estimated, and marked so ("feet"). A joint without a bone is NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..render import mannequin as mq
from ..render import poses, rig

# the segment that sets each joint's rest direction: the joint's head to this child's head
PRIMARY_CHILD = {"root": "spine", "spine": "chest", "chest": "neck", "neck": "head"}
for _s in ("l", "r"):
    PRIMARY_CHILD.update({f"{_s}_shoulder": f"{_s}_elbow", f"{_s}_elbow": f"{_s}_wrist", f"{_s}_wrist": f"{_s}_middle1",
                          f"{_s}_hip": f"{_s}_knee", f"{_s}_knee": f"{_s}_ankle", f"{_s}_ankle": f"{_s}_toe"})
    for _f in rig.FINGERS:
        PRIMARY_CHILD.update({f"{_s}_{_f}{i}": f"{_s}_{_f}{i + 1}" for i in (1, 2, 3)})
OUR_REST = rig.rest_positions(rig.REFERENCE_HEIGHT)
ESTIMATED_BODY = ("nose", "r_eye", "l_eye", "r_ear", "l_ear")
PART_OF_JOINT = {"root": "pelvis", "spine": "abdomen", "chest": "chest", "neck": "neck", "head": "head"}
for _s in ("l", "r"):
    PART_OF_JOINT.update({f"{_s}_shoulder": f"upper_arm_{_s}", f"{_s}_elbow": f"forearm_{_s}", f"{_s}_wrist": f"hand_{_s}",
                          f"{_s}_hip": f"thigh_{_s}", f"{_s}_knee": f"shin_{_s}", f"{_s}_ankle": f"foot_{_s}",
                          f"{_s}_toe": f"foot_{_s}", **{f"{_s}_{f}{i}": f"hand_{_s}" for f in rig.FINGERS for i in (1, 2, 3, 4)}})


@dataclass
class RigRest:
    """A rig's rest pose as measured in Blender (world space of the imported file)."""
    names: list  # bone names
    parents: np.ndarray  # (B,) parent bone index, -1 for a root bone; parents come first
    matrices: np.ndarray  # (B, 4, 4) rest world matrices (the armature object's times the bone's)
    tails: np.ndarray  # (B, 3) rest world tails
    vertices: np.ndarray  # (N, 3) rest world vertices of its meshes (a sample is enough)
    vertex_bone: np.ndarray  # (N,) each vertex's dominant bone (-1: none)
    triangles: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"names": list(self.names), "parents": self.parents.tolist(), "matrices": self.matrices.tolist(),
                "tails": self.tails.tolist(), "vertices": np.round(self.vertices, 6).tolist(),
                "vertex_bone": self.vertex_bone.tolist(), "triangles": int(self.triangles), "extra": self.extra}

    @classmethod
    def from_json(cls, d: dict) -> "RigRest":
        return cls(list(d["names"]), np.array(d["parents"], int), np.array(d["matrices"], float).reshape(-1, 4, 4),
                   np.array(d["tails"], float).reshape(-1, 3), np.array(d["vertices"], float).reshape(-1, 3),
                   np.array(d["vertex_bone"], int), int(d.get("triangles", 0)), dict(d.get("extra") or {}))


def align(a, b) -> np.ndarray:
    """The smallest rotation turning direction a onto direction b."""
    a, b = np.asarray(a, float) / np.linalg.norm(a), np.asarray(b, float) / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:
        p = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        return rig.rotation(p / np.linalg.norm(p), 180.0)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def _head_template():
    """The mannequin's head keypoints relative to its head joint, its head's height above the
    joint (hair included), and its mesh's height (lowest to highest vertex), at the reference height."""
    body = mq.build(rig.REFERENCE_HEIGHT)
    h = rig.JOINT_INDEX["head"]
    head_part = next(p for p in body.parts if p.name == "head")
    top = head_part.verts[:, 2].max() - body.rest[h, 2]
    z = body.all_vertices()[0][:, 2]
    return body.keypoint_rest - body.rest[h], top, float(z.max() - z.min())


_TEMPLATE = None


_MANNEQUIN = None


def _mannequin():
    """The mannequin at the reference height (the feet's template)."""
    global _MANNEQUIN
    if _MANNEQUIN is None:
        _MANNEQUIN = mq.build(rig.REFERENCE_HEIGHT)
    return _MANNEQUIN


def head_template():
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = _head_template()
    return _TEMPLATE


def rest_kind(up_arm_dir: np.ndarray | None) -> str:
    """The rest pose by the upper arms' angle from hanging straight down (canonical frame)."""
    if up_arm_dir is None:
        return "unknown"
    angle = np.degrees(np.arccos(np.clip(-up_arm_dir[2] / np.linalg.norm(up_arm_dir), -1, 1)))
    return "arms-down" if angle < 25 else "a-pose" if angle < 65 else "t-pose" if angle < 115 else "arms-up"


class Retarget:
    """A rig's measured rest and bone map, ready to pose: posed_matrices(entry) -> world matrices."""

    def __init__(self, rest: RigRest, found: dict, height="auto"):
        self.rest, self.found = rest, dict(found)
        self.index = {n: i for i, n in enumerate(rest.names)}
        self.bone = {k: self.index[b] for k, b in found.items() if b in self.index}
        self.joint_of = {self.bone[j]: j for j in rig.JOINT_NAMES if j in self.bone}
        heads = rest.matrices[:, :3, 3]
        hb = lambda j: heads[self.bone[j]]  # noqa: E731
        left = hb("l_hip") - hb("r_hip")
        if "l_shoulder" in self.bone and "r_shoulder" in self.bone:
            left = left / np.linalg.norm(left) + (d := hb("l_shoulder") - hb("r_shoulder")) / np.linalg.norm(d)
        top = next((j for j in ("head", "neck", "chest") if j in self.bone), None)
        up = hb(top) - hb("root") if top else np.array([0.0, 0.0, 1.0])  # no bone above the hips: the file's z
        z = up / np.linalg.norm(up)
        x = left - (left @ z) * z
        x /= np.linalg.norm(x)
        g = np.stack([x, np.cross(z, x), z])  # rig world -> canonical
        vc = rest.vertices @ g.T if len(rest.vertices) else (heads @ g.T)
        self.rest_height = float(vc[:, 2].max() - vc[:, 2].min())
        self.scale = 1.0 if height == "auto" else float(height) / self.rest_height
        self.height = self.rest_height * self.scale
        root_c = g @ hb("root")
        t0 = np.eye(4)
        t0[:3, :3] = self.scale * g
        t0[:3, 3] = -self.scale * np.array([root_c[0], root_c[1], vc[:, 2].min()])
        self.to_canonical = t0  # rig world -> canonical (facing -Y, feet at z = 0 in the rest pose)
        self.canon = np.einsum("ij,bjk->bik", t0, rest.matrices)
        self.scales = np.linalg.norm(self.canon[:, :3, 0], axis=1)
        self.q = self.canon[:, :3, :3] / self.scales[:, None, None]
        self.tail_local = np.einsum("bij,bj->bi", np.linalg.inv(rest.matrices),
                                    np.column_stack([rest.tails, np.ones(len(rest.tails))]))
        self.local = np.array([np.linalg.inv(self.canon[p]) @ self.canon[b] if p >= 0 else self.canon[b]
                               for b, p in enumerate(rest.parents)])
        self.order = self._parents_first()
        self.align = {}
        for j in rig.JOINT_NAMES:  # parents first: each joint's alignment starts from its parent's
            if j not in self.bone:
                continue
            p = rig.JOINTS[j].parent
            while p is not None and p not in self.align:
                p = rig.JOINTS[p].parent
            pa = self.align[p] if p is not None else np.eye(3)
            c = PRIMARY_CHILD.get(j)
            d_rig = self.canon[self.bone[c], :3, 3] - self.canon[self.bone[j], :3, 3] if c in self.bone else None
            if d_rig is not None and np.linalg.norm(d_rig) > 1e-6:
                self.align[j] = align(pa @ d_rig, OUR_REST[rig.JOINT_INDEX[c]] - OUR_REST[rig.JOINT_INDEX[j]]) @ pa
            else:
                self.align[j] = pa
        up_arm = None
        if "l_shoulder" in self.bone and "l_elbow" in self.bone:
            up_arm = self.canon[self.bone["l_elbow"], :3, 3] - self.canon[self.bone["l_shoulder"], :3, 3]
        self.rest_pose = rest_kind(up_arm)
        self.eye_local = {}
        neutral = self.matrices(rig.Posed(OUR_REST.copy(), np.repeat(np.eye(3)[None], len(rig.JOINT_NAMES), 0)))
        self._face_local = self._estimated_face(neutral)
        self._feet_local = self._estimated_feet(neutral)

    def size_ratio(self) -> float:
        """The rig's size against the mannequin's at its reference height, both measured on the mesh
        (lowest to highest vertex): what the mannequin's distances (visibility radii) scale by."""
        return self.height / head_template()[2]

    def forward(self) -> np.ndarray:
        """The direction the rig faces in its file's world (canonical -Y)."""
        return self.to_canonical[:3, :3].T @ [0.0, -self.scale, 0.0] / self.scale ** 2

    def set_eye_points(self, points: dict) -> None:
        """The eyes' surface points in the rest pose (the rig's world), carried by the eye bones:
        Blender casts a ray from each eye bone's head forward through the face (user_rig.py)."""
        for key, p in points.items():
            b = self.bone[key]
            self.eye_local[key] = np.linalg.inv(self.rest.matrices[b]) @ np.append(p, 1.0)

    def _parents_first(self) -> list:
        order, seen = [], set()

        def visit(b):
            if b in seen:
                return
            p = self.rest.parents[b]
            if p >= 0:
                visit(p)
            seen.add(b)
            order.append(b)

        for b in range(len(self.rest.names)):
            visit(b)
        return order

    def matrices(self, posed: rig.Posed, root_offset=(0.0, 0.0, 0.0)) -> np.ndarray:
        """(B, 4, 4) canonical world matrices of every bone for our forward kinematics' rotations
        (posed.rotations; positions are the rig's own). root_offset moves the root bone's head."""
        out = np.zeros_like(self.canon)
        for b in self.order:
            p = self.rest.parents[b]
            base = out[p] @ self.local[b] if p >= 0 else self.canon[b].copy()
            j = self.joint_of.get(b)
            if j is not None:
                m = np.eye(4)
                m[:3, :3] = posed.rotations[rig.JOINT_INDEX[j]] @ self.align[j] @ self.q[b] * self.scales[b]
                m[:3, 3] = base[:3, 3] if j != "root" else self.canon[b, :3, 3] + np.asarray(root_offset, float)
                base = m
            out[b] = base
        return out

    def pose(self, entry) -> tuple[np.ndarray, bool]:
        """(B, 4, 4) canonical bone matrices of a pose entry (before grounding), and whether the
        entry asks to be grounded."""
        angles, offset, grounded = poses.pose_angles(entry)
        return self.matrices(rig.forward_kinematics(OUR_REST, angles), offset), grounded

    def _estimated_face(self, neutral: np.ndarray) -> np.ndarray | None:
        """Per keypoint, its position in the head bone's frame for the estimated ones."""
        if "head" not in self.bone:
            return None
        template, mq_top, _ = head_template()
        hb = self.bone["head"]
        head_pos = neutral[hb, :3, 3]
        below = self._descendants(hb)
        vc = self.rest.vertices @ self.to_canonical[:3, :3].T + self.to_canonical[:3, 3]
        sel = np.isin(self.rest.vertex_bone, list(below)) if len(vc) else np.zeros(0, bool)
        top = vc[sel, 2].max() - self.canon[hb, 2, 3] if sel.any() else mq_top * self.height / rig.REFERENCE_HEIGHT
        pts = head_pos + template * (top / mq_top)
        inv = np.linalg.inv(neutral[hb])
        return (pts @ inv[:3, :3].T) + inv[:3, 3]

    def _estimated_feet(self, neutral: np.ndarray) -> dict:
        """{foot point: (bone, its position in that bone's frame)}: the mannequin's foot points
        (mannequin.FOOT_KEYPOINTS, at the reference height) placed on the rig's foot in the neutral
        pose, where the ankle-to-toe segment points as ours: from the ankle's head, scaled by the
        rig's ankle-to-toe length against the mannequin's (without a toe bone: by the rig's size).
        The toes ride on the toe bone when there is one, else (and the heel always) on the ankle's.
        Estimated from the foot's bones, never read from the rig's mesh; a foot without an ankle
        bone has none."""
        body = _mannequin()
        a0, t0 = (body.rest[rig.JOINT_INDEX[f"l_{j}"]] for j in ("ankle", "toe"))
        out = {}
        for side in ("l", "r"):
            ankle, toe = f"{side}_ankle", f"{side}_toe"
            if ankle not in self.bone:
                continue
            a = neutral[self.bone[ankle], :3, 3]
            k = (np.linalg.norm(neutral[self.bone[toe], :3, 3] - a) / np.linalg.norm(t0 - a0) if toe in self.bone
                 else self.height / rig.REFERENCE_HEIGHT)
            for i, name in enumerate(mq.FOOT_KEYPOINTS):
                if name[0] != side:
                    continue
                p0 = body.keypoint_rest[mq.KP_FEET][i]
                a0s = body.rest[rig.JOINT_INDEX[ankle]]
                b = self.bone[toe] if toe in self.bone and not name.endswith("heel") else self.bone[ankle]
                out[name] = (b, np.linalg.inv(neutral[b]) @ np.append(a + (p0 - a0s) * k, 1.0))
        return out

    def _descendants(self, b: int) -> set:
        out, changed = {b}, True
        while changed:
            changed = False
            for i, p in enumerate(self.rest.parents):
                if p in out and i not in out:
                    out.add(i)
                    changed = True
        return out

    def estimated(self) -> np.ndarray:
        est = np.zeros(mq.N_KEYPOINTS, bool)
        est[mq.KP_FEET] = [n in self._feet_local for n in mq.FOOT_KEYPOINTS]
        if self._face_local is None:
            return est
        for n in ESTIMATED_BODY:
            if not (n.endswith("_eye") and n in self.bone):
                est[mq.BODY_KEYPOINTS.index(n)] = True
        est[mq.KP_FACE] = True
        return est

    def hand_found(self, side: str) -> bool:
        return f"{side}_wrist" in self.bone and any(f"{side}_{f}1" in self.bone for f in rig.FINGERS)

    def keypoints(self, mats: np.ndarray) -> np.ndarray:
        """(130, 3) keypoints from (B, 4, 4) world bone matrices (mannequin layout; NaN: no such point)."""
        kp = np.full((mq.N_KEYPOINTS, 3), np.nan)
        head = lambda j: mats[self.bone[j], :3, 3] if j in self.bone else np.full(3, np.nan)  # noqa: E731

        def tail(j):
            b = self.bone[j]
            return (mats[b] @ self.tail_local[b])[:3]

        est = self.estimated()
        face = None
        if self._face_local is not None:
            m = mats[self.bone["head"]]
            face = self._face_local @ m[:3, :3].T + m[:3, 3]
        for i, name in enumerate(mq.BODY_KEYPOINTS):
            if name == "neck":
                kp[i] = (head("l_shoulder") + head("r_shoulder")) / 2
            elif est[i]:
                kp[i] = face[i]
            elif name in self.eye_local:
                kp[i] = (mats[self.bone[name]] @ self.eye_local[name])[:3]
            else:
                kp[i] = head(name)
        for sl, s in ((mq.KP_LHAND, "l"), (mq.KP_RHAND, "r")):
            if not self.hand_found(s):
                continue
            for k, j in enumerate(mq.HAND_JOINTS):
                name = f"{s}_{j}"
                if name in self.bone:
                    kp[sl.start + k] = head(name)
                elif j.endswith("4") and f"{s}_{j[:-1]}3" in self.bone:
                    kp[sl.start + k] = tail(f"{s}_{j[:-1]}3")
        if face is not None:
            kp[mq.KP_FACE] = face[mq.KP_FACE]
        for i, name in enumerate(mq.FOOT_KEYPOINTS):
            if name in self._feet_local:
                b, local = self._feet_local[name]
                kp[mq.KP_FEET.start + i] = (mats[b] @ local)[:3]
        return kp

    def report(self, file: str, fmt: str, used: str, unmapped: list) -> dict:
        est = self.estimated()
        names_est = ([n for i, n in enumerate(mq.BODY_KEYPOINTS) if est[i]] + (["face"] if est[mq.KP_FACE].any() else [])
                     + (["feet"] if est[mq.KP_FEET].any() else []))
        found = [j for j in (*rig.JOINT_NAMES, "l_eye", "r_eye", "jaw") if j in self.bone or self._tip_from_tail(j)]
        return {"file": file, "format": fmt, "bone_map": used, "rest": self.rest_pose, "height": round(self.height, 4),
                "triangles": int(self.rest.triangles),
                "joints": {"found": found, "estimated": names_est,
                           "missing": [j for j in rig.JOINT_NAMES if j not in self.bone and not self._tip_from_tail(j)]},
                "hands": {"left": self.hand_found("l"), "right": self.hand_found("r")},
                "unmapped_bones": list(unmapped)}

    def _tip_from_tail(self, j: str) -> bool:
        """A finger tip without a bone of its own: its last bone's tail (found, in the report)."""
        return j[-1:] == "4" and j[:-1] + "3" in self.bone and self.hand_found(j[0])

    def part_labels(self) -> np.ndarray:
        """(B,) each bone's part label (mannequin.PART_LABEL): its own joint's, else its nearest
        mapped ancestor's; a bone above the root (or outside the skeleton) counts as the pelvis."""
        out = np.zeros(len(self.rest.names), int)
        for b in self.order:
            j = self.joint_of.get(b)
            p = self.rest.parents[b]
            out[b] = (mq.PART_LABEL[PART_OF_JOINT[j]] if j else out[p] if p >= 0 else mq.PART_LABEL["pelvis"])
        return out
