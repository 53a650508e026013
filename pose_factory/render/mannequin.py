"""The procedural mannequin: body-part meshes and the keypoints they carry, built from code.

Pure numpy: Blender turns these arrays into objects, and the core uses the same vertices for
auto-framing and grounding. Every vertex is bound to one joint with weight 1 (a jointed
mannequin: parts overlap at rounded joints, so bending never opens a hole).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rig

# Segmentation labels (0 is background). Order is part of the output contract.
PARTS = (
    "head", "neck", "chest", "abdomen", "pelvis",
    "upper_arm_l", "upper_arm_r", "forearm_l", "forearm_r", "hand_l", "hand_r",
    "thigh_l", "thigh_r", "shin_l", "shin_r", "foot_l", "foot_r",
)
PART_LABEL = {name: i + 1 for i, name in enumerate(PARTS)}
# metres for a 1.75 m subject: the upper arm's radius where it meets the shoulder (times the build's
# girth) and the ear's half-axes (thickness, front to back, height); posture_landmarks uses both
UPPER_ARM_RADIUS = 0.055
EAR_RADII = (0.012, 0.022, 0.032)
PART_GROUPS = {  # friendly groups for part masks
    "head": ["head"], "face": ["head"], "neck": ["neck"], "torso": ["chest", "abdomen", "pelvis"],
    "arms": ["upper_arm_l", "upper_arm_r", "forearm_l", "forearm_r"],
    "hands": ["hand_l", "hand_r"], "legs": ["thigh_l", "thigh_r", "shin_l", "shin_r"],
    "feet": ["foot_l", "foot_r"],
}


@dataclass
class Part:
    name: str
    verts: np.ndarray  # (N, 3) rest-pose positions
    faces: list  # vertex index tuples (quads and triangles)
    joints: np.ndarray  # (N,) joint index each vertex is bound to
    materials: np.ndarray  # (F,) 0 = clay, 1 = dark features (eyes, brows, mouth, hair)

    def triangles(self) -> tuple[np.ndarray, np.ndarray]:
        """((T, 3) vertex indices, (T,) material): every face as triangles, the way Blender gets
        them, so it never splits a quad itself (triangulate)."""
        return triangulate(self.verts, self.faces, self.materials)


def triangulate(verts, faces, materials) -> tuple[np.ndarray, np.ndarray]:
    """Faces as triangles, each quad split along the diagonal a mirror-invariant rule picks: the
    shorter one, else the one whose ends (|x|, y, z), sorted, come first. The mesh is
    mirror-symmetric (x -> -x), so the mirror image of every quad is split the mirrored way and
    every triangle has its mirror image: a mirrored pose renders as the flipped image."""
    v = np.asarray(verts, np.float64)
    sizes = np.array([len(f) for f in faces])
    if not np.isin(sizes, (3, 4)).all():
        raise ValueError(f"a face of {sizes[~np.isin(sizes, (3, 4))][0]} vertices: the mannequin has triangles and quads only")
    materials = np.asarray(materials, np.int32)
    tris = np.array([f for f in faces if len(f) == 3], np.int64).reshape(-1, 3)
    quads = np.array([f for f in faces if len(f) == 4], np.int64).reshape(-1, 4)
    a, b, c, d = quads.T
    first = _first_diagonal(v, a, b, c, d)
    split = np.where(first[:, None, None], np.stack([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], 1),
                     np.stack([quads[:, [0, 1, 3]], quads[:, [1, 2, 3]]], 1))
    return (np.concatenate([tris, split.reshape(-1, 3)]),
            np.concatenate([materials[sizes == 3], np.repeat(materials[sizes == 4], 2)]))


def _first_diagonal(v, a, b, c, d, tol=1e-9) -> np.ndarray:
    """Per quad (a, b, c, d): whether it is split along a-c (else b-d), by a rule that its mirror
    image agrees on: compare the diagonals' lengths, then their ends (|x|, y, z) in sorted order."""
    def signature(i, j):
        ei, ej = (np.column_stack([np.abs(v[k][:, 0]), v[k][:, 1:]]) for k in (i, j))
        diff = ei - ej
        k = np.argmax(np.abs(diff) > tol, axis=1)  # ends equal up to rounding: either order
        i_first = (diff[np.arange(len(diff)), k] <= 0)[:, None]
        lo, hi = np.where(i_first, ei, ej), np.where(i_first, ej, ei)
        return np.column_stack([np.linalg.norm(v[i] - v[j], axis=1), lo, hi])

    diff = signature(a, c) - signature(b, d)
    significant = np.abs(diff) > tol
    k = np.argmax(significant, axis=1)
    # a quad that is its own mirror image with the diagonals swapped has no symmetric split: none here
    return ~significant.any(axis=1) | (diff[np.arange(len(diff)), k] < 0)


@dataclass
class Mannequin:
    height: float
    build: str
    rest: np.ndarray  # (J, 3) rest joint positions
    parts: list
    keypoint_rest: np.ndarray  # (K, 3) rest positions of every keypoint
    keypoint_joint: np.ndarray  # (K,) joint each keypoint moves with
    shape: dict | None = None  # the body shape (shape.normalize_shape; None = today's body)

    def all_vertices(self):
        verts = np.concatenate([p.verts for p in self.parts])
        joints = np.concatenate([p.joints for p in self.parts])
        return verts, joints

    def all_triangles(self) -> np.ndarray:
        """(T, 3) vertex indices into all_vertices(): every part's triangles (Part.triangles),
        the ones Blender renders."""
        tris, base = [], 0
        for p in self.parts:
            tris.append(p.triangles()[0] + base)
            base += len(p.verts)
        return np.concatenate(tris)


# --- mesh builders --------------------------------------------------------------------------
def _frame(direction):
    """Two unit vectors perpendicular to direction, the first as close to world X as possible."""
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    ref = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = ref - d * (ref @ d)
    a /= np.linalg.norm(a)
    return a, np.cross(d, a)


def loft(p0, p1, profile, seg=24, axis_a=None, offsets=None, cap=True):
    """A closed tube from p0 to p1. profile: [(t, ra, rb)] with t in 0..1 along the bone; ra is
    the radius along axis_a (default: the perpendicular nearest world X), rb the other one.
    offsets: optional [(t, vec)] shifts of ring centres. Rounded caps extend each end."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    length = np.linalg.norm(d)
    u = d / length
    a, b = _frame(u)
    if axis_a is not None:
        a = np.asarray(axis_a, float) - u * (np.asarray(axis_a, float) @ u)
        a /= np.linalg.norm(a)
        b = np.cross(u, a)
    ts, ras, rbs = (np.array(c, float) for c in zip(*profile))
    rings = []  # (centre, ra, rb)
    if cap:  # dome at the start: quarter-ellipse in 4 steps
        for ang in np.radians([80, 60, 40, 20]):
            rings.append((-np.sin(ang) * ras[0] * 0.9 / length, np.cos(ang) * ras[0], np.cos(ang) * rbs[0]))
    rings += list(zip(ts, ras, rbs))
    if cap:
        for ang in np.radians([20, 40, 60, 80]):
            rings.append((1 + np.sin(ang) * ras[-1] * 0.9 / length, np.cos(ang) * ras[-1], np.cos(ang) * rbs[-1]))
    th = np.linspace(0, 2 * np.pi, seg, endpoint=False)
    verts, faces = [], []
    for t, ra, rb in rings:
        c = p0 + d * t
        if offsets:
            ot, ov = zip(*offsets)
            c = c + np.array([np.interp(t, ot, [v[k] for v in ov]) for k in range(3)])
        verts.append(c + np.outer(np.cos(th) * ra, a) + np.outer(np.sin(th) * rb, b))
    verts = np.concatenate(verts)
    n = len(rings)
    for r in range(n - 1):
        for s in range(seg):
            i0, i1 = r * seg + s, r * seg + (s + 1) % seg
            faces.append((i0, i1, i1 + seg, i0 + seg))
    # poles close the ends
    start = p0 - u * (ras[0] * 0.9 if cap else 0)
    end = p1 + u * (ras[-1] * 0.9 if cap else 0)
    verts = np.vstack([verts, start, end])
    ps, pe = len(verts) - 2, len(verts) - 1
    for s in range(seg):
        faces.append((ps, (s + 1) % seg, s))
        last = (n - 1) * seg
        faces.append((last + s, last + (s + 1) % seg, pe))
    return verts, faces


def ellipsoid(centre, radii, seg=24, rings=16, squash=None):
    """UV ellipsoid; squash(z_unit) -> (sx, sy) narrows it along its height (jaw, heel)."""
    c = np.asarray(centre, float)
    verts = []
    for i in range(1, rings):
        phi = np.pi * i / rings
        z = np.cos(phi)
        th = np.linspace(0, 2 * np.pi, seg, endpoint=False)
        sx, sy = squash(z) if squash else (1.0, 1.0)
        ring = np.stack([np.sin(phi) * np.cos(th) * radii[0] * sx,
                         np.sin(phi) * np.sin(th) * radii[1] * sy,
                         np.full(seg, z * radii[2])], 1)
        verts.append(ring + c)
    verts = np.concatenate(verts)
    faces = []
    for r in range(rings - 2):
        for s in range(seg):
            i0, i1 = r * seg + s, r * seg + (s + 1) % seg
            faces.append((i0, i0 + seg, i1 + seg, i1))
    verts = np.vstack([verts, c + [0, 0, radii[2]], c - [0, 0, radii[2]]])
    top, bot = len(verts) - 2, len(verts) - 1
    last = (rings - 2) * seg
    for s in range(seg):
        faces.append((top, s, (s + 1) % seg))
        faces.append((bot, last + (s + 1) % seg, last + s))
    return verts, faces


class _PartBuilder:
    def __init__(self, name):
        self.name, self.verts, self.faces, self.joints, self.materials = name, [], [], [], []

    def add(self, mesh, joint, material=0):
        v, f = mesh
        base = sum(len(x) for x in self.verts)
        self.verts.append(np.asarray(v, float))
        self.faces += [tuple(i + base for i in face) for face in f]
        self.joints.append(np.full(len(v), rig.JOINT_INDEX[joint]))
        self.materials += [material] * len(f)

    def build(self):
        return Part(self.name, np.concatenate(self.verts), self.faces, np.concatenate(self.joints),
                    np.array(self.materials, np.int32))


# --- the head and the face ------------------------------------------------------------------
class Head:
    """Egg-shaped skull narrowing to the jaw, with a nose; face points lie on its front."""

    def __init__(self, s, g, proportions: rig.Proportions | None = None):
        """s: the height's scale; proportions: the body shape's (rig.Proportions), which sizes the
        head (s becomes s times its head factor) and places it on the neck."""
        p = proportions or rig.Proportions()
        self.c = p.head_point([0.0, 0.012, 1.652]) * s
        s = s * p.head
        self.r = np.array([0.077 * min(g, 1.08), 0.099, 0.118]) * s
        self.nose_c = np.array([0.0, self.c[1] - self.r[1] * 0.93, self.c[2] - 0.024 * s])
        self.nose_r = np.array([0.014, 0.02, 0.027]) * s
        self.s = s

    @staticmethod
    def squash(z):  # z in -1..1: narrower jaw and chin below the centre
        t = max(0.0, -z)
        return 1.0 - 0.3 * t ** 1.5, 1.0 - 0.12 * t

    def front_y(self, x, z):
        """y of the frontmost surface (head or nose) at world (x, z)."""
        zn = (z - self.c[2]) / self.r[2]
        sx, sy = self.squash(float(np.clip(zn, -1, 1)))
        q = 1 - (x / (self.r[0] * sx)) ** 2 - zn ** 2
        y = self.c[1] - self.r[1] * sy * np.sqrt(max(q, 0.0))
        nq = 1 - ((x - self.nose_c[0]) / self.nose_r[0]) ** 2 - ((z - self.nose_c[2]) / self.nose_r[2]) ** 2
        if nq > 0:
            y = min(y, self.nose_c[1] - self.nose_r[1] * np.sqrt(nq))
        return y

    def meshes(self):
        """(mesh, material) pairs. Dark eyes, brows, mouth and hair tell front from back, which a
        pose estimator needs to tell left from right on a mannequin."""
        s = self.s
        yield ellipsoid(self.c, self.r, seg=32, rings=20, squash=self.squash), 0
        yield ellipsoid(self.nose_c, self.nose_r, seg=12, rings=8), 0
        for side in (-1, 1):  # ears: flat ellipsoids on the sides
            yield ellipsoid(self.ear(side) + [side * 0.004 * s, 0, 0], np.array(EAR_RADII) * s, 12, 8), 0
        for side in (-1, 1):
            e = self.eye(side)
            yield ellipsoid(e + np.array([0, 0.003, 0]) * s, np.array([0.011, 0.005, 0.0065]) * s, 12, 8), 1
            yield ellipsoid(e + np.array([0, 0.003, 0.02]) * s, np.array([0.019, 0.006, 0.0045]) * s, 12, 8), 1
        mx, mz = 0.0, self.c[2] + 0.01 * s - (0.53 + 0.3) * 0.082 * s
        yield ellipsoid((mx, self.front_y(mx, mz) + 0.002 * s, mz), np.array([0.02, 0.005, 0.005]) * s, 12, 8), 1
        yield self.hair(), 1

    def hair(self):
        """A cap over the top and back of the skull, open over the face."""
        v, f = ellipsoid(self.c + np.array([0, 0.006, 0.01]) * self.s, self.r * [1.05, 1.04, 1.03], seg=32,
                         rings=20, squash=self.squash)
        rel = (v - self.c) / self.r
        keep_v = (rel[:, 2] > 0.25) | ((rel[:, 1] > 0.05) & (rel[:, 2] > -0.55))
        keep_v &= ~((rel[:, 1] < -0.2) & (rel[:, 2] < 0.62))  # leave the forehead and face bare
        faces = [face for face in f if all(keep_v[i] for i in face)]
        return v, faces

    def ear(self, side):
        z = self.c[2] - 0.01 * self.s
        return np.array([side * self.r[0] * 0.97, self.c[1] + 0.012 * self.s, z])

    def eye(self, side):
        x, z = side * 0.032 * self.s, self.c[2] + 0.01 * self.s
        return np.array([x, self.front_y(x, z) - 0.001, z])

    def nose_tip(self):
        return self.nose_c - np.array([0.0, self.nose_r[1], 0.0])

    def face70(self):
        """OpenPose's 70 face points (dlib's 68 + the two pupils), projected onto the face."""
        pts = []
        for x, y in FACE_TEMPLATE:
            wx = x * 0.068 * self.s
            wz = self.c[2] + 0.01 * self.s - (y + 0.3) * 0.082 * self.s
            pts.append((wx, self.front_y(wx, wz) - 0.001 * self.s, wz))
        return np.array(pts)


def _face_template():
    """dlib-68 layout + pupils in face units: x to the image right (subject's left), y down,
    eyes at y = -0.3, chin at y = 0.95."""
    pts = []
    for k in range(17):  # jaw, from the subject's right ear round the chin
        a = np.pi * k / 16
        pts.append((-0.95 * np.cos(a) * (1 - 0.12 * np.sin(a)), -0.3 + 1.25 * np.sin(a) ** 1.3))
    for side in (-1, 1):  # eyebrows, outer to inner on the right, inner to outer on the left
        xs = np.linspace(0.75, 0.15, 5) if side < 0 else np.linspace(0.15, 0.75, 5)
        for i, x in enumerate(xs):
            t = i / 4
            pts.append((side * x, -0.55 - 0.08 * np.sin(np.pi * t)))
    pts += [(0, -0.32), (0, -0.17), (0, -0.03), (0, 0.1)]  # nose bridge to tip
    pts += [(-0.2, 0.2), (-0.1, 0.23), (0, 0.25), (0.1, 0.23), (0.2, 0.2)]  # nostrils
    pts += [(-0.54, -0.3), (-0.45, -0.35), (-0.33, -0.35), (-0.24, -0.3), (-0.33, -0.26), (-0.45, -0.26)]
    pts += [(0.24, -0.3), (0.33, -0.35), (0.45, -0.35), (0.54, -0.3), (0.45, -0.26), (0.33, -0.26)]
    pts += [(-0.35, 0.52), (-0.22, 0.45), (-0.08, 0.42), (0, 0.44), (0.08, 0.42), (0.22, 0.45),
            (0.35, 0.52), (0.22, 0.6), (0.1, 0.64), (0, 0.65), (-0.1, 0.64), (-0.22, 0.6)]
    pts += [(-0.28, 0.52), (-0.1, 0.49), (0, 0.5), (0.1, 0.49), (0.28, 0.52), (0.1, 0.55), (0, 0.56), (-0.1, 0.55)]
    pts += [(-0.39, -0.3), (0.39, -0.3)]  # pupils: right, left
    return pts


FACE_TEMPLATE = _face_template()
assert len(FACE_TEMPLATE) == 70

# --- keypoints ------------------------------------------------------------------------------
BODY_KEYPOINTS = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
                  "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                  "r_eye", "l_eye", "r_ear", "l_ear")
HAND_JOINTS = ["wrist"] + [f"{f}{i}" for f in rig.FINGERS for i in (1, 2, 3, 4)]
# ComfyUI core's foot_keypoints_2d order (COCO-WholeBody's feet, DWPose's points 18-23)
FOOT_KEYPOINTS = ("l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel")
N_BODY, N_HAND, N_FACE, N_FOOT = 18, 21, 70, 6
# keypoint array layout: body 18, left hand 21, right hand 21, face 70, feet 6 (appended last so
# the older 130 keep their places)
KP_BODY = slice(0, 18)
KP_LHAND = slice(18, 39)
KP_RHAND = slice(39, 60)
KP_FACE = slice(60, 130)
KP_FEET = slice(130, 136)
N_KEYPOINTS = 136


def keypoint_names():
    return (list(BODY_KEYPOINTS) + [f"l_hand_{j}" for j in HAND_JOINTS]
            + [f"r_hand_{j}" for j in HAND_JOINTS] + [f"face_{i}" for i in range(N_FACE)] + list(FOOT_KEYPOINTS))


def _build_keypoints(rest, head, feet):
    pos, joint = [], []

    def add(p, j):
        pos.append(np.asarray(p, float))
        joint.append(rig.JOINT_INDEX[j])

    for name in BODY_KEYPOINTS:
        if name == "nose":
            add(head.nose_tip(), "head")
        elif name == "neck":  # OpenPose's neck is the midpoint of the shoulders
            add((rest[rig.JOINT_INDEX["l_shoulder"]] + rest[rig.JOINT_INDEX["r_shoulder"]]) / 2, "chest")
        elif name.endswith("_eye"):
            add(head.eye(1 if name[0] == "l" else -1), "head")
        elif name.endswith("_ear"):
            add(head.ear(1 if name[0] == "l" else -1), "head")
        else:
            add(rest[rig.JOINT_INDEX[name]], name)
    for side in ("l", "r"):
        for j in HAND_JOINTS:
            add(rest[rig.JOINT_INDEX[f"{side}_{j}"]], f"{side}_{j}" if not j.endswith("4") else f"{side}_{j[:-1]}3")
    for p in head.face70():
        add(p, "head")
    for name in FOOT_KEYPOINTS:
        add(feet[name], f"{name[0]}_ankle")  # the foot's mesh moves with its ankle
    return np.array(pos), np.array(joint)


# --- the body -------------------------------------------------------------------------------
FOOT_SEG = 16  # vertices round each ring of a foot's loft


def foot_vertices(side: str) -> dict:
    """{"big_toe", "small_toe", "heel": vertex index in the foot's loft}: exact vertices of the
    mesh. loft's rings are 4 cap rings at the heel (80, 60, 40, 20 degrees), the 3 profile rings,
    4 cap rings at the toes (20, 40, 60, 80 degrees); vertex s of a ring lies at angle
    2 pi s / FOOT_SEG from the foot's +x axis (s = FOOT_SEG / 4: the top, 3/4: the sole). Big toe:
    the toe cap's 40-degree ring on the inner side; small toe: its 20-degree ring (a little further
    back) on the outer side; heel: the heel cap's 40-degree ring at the sole (back and bottom)."""
    outer, inner = (0, FOOT_SEG // 2) if side == "l" else (FOOT_SEG // 2, 0)  # the left foot lies at +x
    ring = lambda r, s: r * FOOT_SEG + s  # noqa: E731
    return {"big_toe": ring(8, inner), "small_toe": ring(7, outer), "heel": ring(2, 3 * FOOT_SEG // 4)}


def build(height: float = 1.75, build: str = "average", shape: dict | None = None) -> Mannequin:
    """The mannequin of a height (m), a build (rig.BUILDS) and a body shape (shape.normalize_shape;
    None = today's body): its joints (rig.rest_positions) and meshes from the same numbers. Lengths
    along the torso follow the shape's torso, widths the body's size (sb), the head its own (Head),
    the hands the arms' (sa), the thighs' tops and the feet the legs' (sl)."""
    s = height / rig.REFERENCE_HEIGHT
    g = rig.BUILDS[build]
    rest = rig.rest_positions(height, shape)
    P = rig.Proportions(shape)
    sb, sa, sl = s * P.body, s * P.arms, s * P.legs
    hw, sw = P.hip_width, P.shoulder_width
    J = lambda n: rest[rig.JOINT_INDEX[n]]  # noqa: E731
    parts = {name: _PartBuilder(name) for name in PARTS}
    feet = {}  # the foot points, vertices of the feet's meshes (foot_vertices)
    belly = g ** 1.6  # heavier builds gain most at the waist

    # torso: three lofts along Z; rings are (width, depth) half-axes, centres shifted in y
    def torso(z0, z1, prof, joint, part, yoff):
        parts[part].add(loft((0, 0, P.torso_z(z0) * s), (0, 0, P.torso_z(z1) * s), prof, seg=32, axis_a=(1, 0, 0),
                             offsets=[(0, (0, yoff[0] * sb, 0)), (1, (0, yoff[1] * sb, 0))]), joint)

    mid = (hw + sw) / 2  # the abdomen's width goes from the hips' to the shoulders'
    torso(0.83, 1.02, [(0, 0.13 * sb * g * hw, 0.1 * sb * g), (0.35, 0.165 * sb * g * hw, 0.11 * sb * g),
                       (0.75, 0.16 * sb * g * hw, 0.105 * sb * belly), (1, 0.145 * sb * belly * hw, 0.1 * sb * belly)],
          "root", "pelvis", (0.01, 0.005))
    torso(0.99, 1.2, [(0, 0.14 * sb * belly * hw, 0.098 * sb * belly), (0.5, 0.135 * sb * belly * mid, 0.1 * sb * belly),
                      (1, 0.145 * sb * g * sw, 0.1 * sb * g)], "spine", "abdomen", (0.005, 0.0))
    torso(1.16, 1.47, [(0, 0.145 * sb * g * sw, 0.1 * sb * g), (0.35, 0.158 * sb * g * sw, 0.112 * sb * g),
                       (0.7, 0.165 * sb * g * sw, 0.105 * sb * g), (0.9, 0.17 * sb * g * sw, 0.085 * sb * g),
                       (1, 0.12 * sb * g, 0.07 * sb * g)], "chest", "chest", (0.0, 0.02))
    nk = J("neck")
    parts["neck"].add(loft(nk - [0, 0, 0.04 * sb], nk + [0, -0.005 * sb, 0.13 * sb],
                           [(0, 0.05 * sb * g, 0.05 * sb * g), (1, 0.045 * sb * g, 0.047 * sb * g)], seg=20), "neck")
    head = Head(s, g, P)
    for m, material in head.meshes():
        parts["head"].add(m, "head", material)

    for side in ("l", "r"):
        sx = 1 if side == "l" else -1
        n = lambda j: f"{side}_{j}"  # noqa: E731
        sh, el, wr = J(n("shoulder")), J(n("elbow")), J(n("wrist"))
        arm = UPPER_ARM_RADIUS * sb * g
        parts[f"upper_arm_{side}"].add(loft(sh, el, [(0, arm, arm), (0.3, 0.05 * sb * g, 0.048 * sb * g),
                                                     (1, 0.037 * sb * g, 0.037 * sb * g)], seg=24), n("shoulder"))
        parts[f"forearm_{side}"].add(loft(el, wr, [(0, 0.037 * sb * g, 0.037 * sb * g), (0.25, 0.042 * sb * g, 0.038 * sb * g),
                                                   (1, 0.022 * sb * g, 0.031 * sb * g)], seg=24), n("elbow"))
        # palm: a flat loft from the wrist to the knuckles, thin across X, wide front-back
        knuckles = (J(n("index1")) + J(n("pinky1"))) / 2
        parts[f"hand_{side}"].add(loft(wr + [0, 0.002 * sa, 0], knuckles + [0, 0, 0.008 * sa],
                                       [(0, 0.02 * sa, 0.032 * sa), (0.6, 0.019 * sa, 0.042 * sa), (1, 0.016 * sa, 0.04 * sa)],
                                       seg=16, axis_a=(1, 0, 0)), n("wrist"))
        for f in rig.FINGERS:
            radius = (0.0105 if f == "thumb" else 0.0085 if f != "pinky" else 0.0075) * sa
            for i in (1, 2, 3):
                a, b = J(n(f"{f}{i}")), J(n(f"{f}{i + 1}"))
                r0 = radius * (1.0 - 0.08 * (i - 1))
                parts[f"hand_{side}"].add(loft(a, b, [(0, r0, r0), (1, r0 * 0.9, r0 * 0.9)], seg=10), n(f"{f}{i}"))
        hp, kn, an, to = J(n("hip")), J(n("knee")), J(n("ankle")), J(n("toe"))
        parts[f"thigh_{side}"].add(loft(hp + [0, 0, 0.03 * sl], kn, [(0, 0.085 * sb * g, 0.088 * sb * g), (0.25, 0.08 * sb * g, 0.08 * sb * g),
                                                                     (1, 0.05 * sb * g, 0.052 * sb * g)], seg=24), n("hip"))
        parts[f"shin_{side}"].add(loft(kn, an, [(0, 0.05 * sb * g, 0.05 * sb * g), (0.3, 0.052 * sb * g, 0.058 * sb * g),
                                                (1, 0.03 * sb * g, 0.032 * sb * g)], seg=24,
                                       offsets=[(0, (0, 0, 0)), (0.3, (0, 0.008 * sb, 0)), (1, (0, 0, 0))]), n("knee"))
        heel = an + np.array([0, 0.045, -0.045]) * sl
        foot = loft(heel, to + np.array([0, -0.03, 0.0]) * sl,
                    [(0, 0.03 * sl, 0.035 * sl), (0.35, 0.038 * sl, 0.04 * sl), (1, 0.035 * sl, 0.018 * sl)],
                    seg=FOOT_SEG, axis_a=(1, 0, 0), offsets=[(0, (0, 0, 0)), (0.35, (sx * 0.003 * sl, 0, 0.01 * sl)), (1, (0, 0, 0))])
        parts[f"foot_{side}"].add(foot, n("ankle"))
        feet.update({f"{side}_{k}": foot[0][v] for k, v in foot_vertices(side).items()})

    kp_rest, kp_joint = _build_keypoints(rest, head, feet)
    return Mannequin(height, build, rest, [parts[p].build() for p in PARTS], kp_rest, kp_joint, shape)


def posed_keypoints(m: Mannequin, posed: rig.Posed) -> np.ndarray:
    return posed.transform_points(m.keypoint_joint, m.keypoint_rest, m.rest)


def posture_landmarks(m: Mannequin, posed: rig.Posed) -> np.ndarray:
    """(18, 3) world points: the body keypoints with the shoulders and ears moved to the anatomical
    landmarks that posture analysis measures and that a pose detector marks (docs/extraction.md,
    "What the points are"): each shoulder at its acromion, the top of the shoulder, i.e. the
    shoulder joint raised by the upper arm's radius along the chest's up axis (the shoulder blade
    moves with the chest); each ear at its tragus, the front of the ear, i.e. the ear's centre moved
    forward by the ear's front-to-back half-axis along the head's forward axis. The others are the
    keypoints as they are (hips, knees and ankles at the joint centres)."""
    s, g, P = m.height / rig.REFERENCE_HEIGHT, rig.BUILDS[m.build], rig.Proportions(m.shape)
    pts = posed_keypoints(m, posed)[KP_BODY].copy()
    up = posed.rotations[rig.JOINT_INDEX["chest"]] @ [0.0, 0.0, UPPER_ARM_RADIUS * (s * P.body) * g]
    forward = posed.rotations[rig.JOINT_INDEX["head"]] @ [0.0, -EAR_RADII[1] * (s * P.head), 0.0]
    for side in ("l", "r"):
        pts[BODY_KEYPOINTS.index(f"{side}_shoulder")] += up
        pts[BODY_KEYPOINTS.index(f"{side}_ear")] += forward
    return pts


def posed_vertices(m: Mannequin, posed: rig.Posed) -> np.ndarray:
    verts, joints = m.all_vertices()
    return posed.transform_points(joints, verts, m.rest)


def visibility_rules(body: Mannequin | None = None):
    """Per keypoint: the radius (m) within which a ray's first hit still counts as reaching it,
    and the body parts whose hit counts as its own (DESIGN.md §5). Surface points (face, eyes,
    ears, fingers) have no own part: only a hit right at them counts, so the far side of the
    head or of a hand is hidden. A hip lies inside the pelvis and the top of its thigh: a hit on
    either is its own, any other must be within the thigh's radius (the abdomen of a body lying
    face down, seen from below, covers the hips 11 cm in front of them). The neck is OpenPose's
    midpoint of the shoulders, which a detector places wherever it sees the shoulders: a hit on
    the neck, the chest or either upper arm (the near shoulder covers it in a side view) is its own.
    body: a shaped mannequin (build's shape) scales the radii with its parts: the body's joints with
    its size below the head, the hands with its arms, the eyes, ears and face with its head (the
    default body's radii exactly as they were)."""
    radius = np.full(N_KEYPOINTS, 0.02)
    own = [set() for _ in range(N_KEYPOINTS)]
    rules = {
        "neck": (0.1, ["neck", "chest"]), "shoulder": (0.08, ["upper_arm"]),
        "elbow": (0.06, ["upper_arm", "forearm"]), "wrist": (0.05, ["forearm", "hand"]),
        "hip": (0.09, ["thigh", "pelvis"]), "knee": (0.07, ["thigh", "shin"]), "ankle": (0.06, ["shin", "foot"]),
    }
    for i, name in enumerate(BODY_KEYPOINTS):
        key = name.split("_", 1)[-1]
        if key in rules:
            rad, parts = rules[key]
            radius[i] = rad
            side = name[0] if name[:2] in ("l_", "r_") else None
            own[i] = {PART_LABEL[p if p in PART_LABEL else f"{p}_{side}"] for p in parts}
    own[BODY_KEYPOINTS.index("neck")] |= {PART_LABEL["upper_arm_l"], PART_LABEL["upper_arm_r"]}
    for sl, side in ((KP_LHAND, "l"), (KP_RHAND, "r")):
        radius[sl] = 0.018
        radius[sl.start] = 0.05  # the wrist sits inside the forearm's end
        own[sl.start] = {PART_LABEL[f"forearm_{side}"], PART_LABEL[f"hand_{side}"]}
    for i in (14, 15, 16, 17):  # eyes and ears: the near ones are seen even at a glancing angle
        radius[i] = 0.04
    radius[KP_FACE] = 0.015
    radius[KP_FEET] = 0.02  # surface points of the foot's mesh: only a hit right at them counts
    P = rig.Proportions(body.shape if body is not None else None)
    radius[KP_BODY] *= P.body
    radius[KP_LHAND] *= P.arms
    radius[KP_RHAND] *= P.arms
    radius[[0, 14, 15, 16, 17]] *= P.head / P.body  # the nose, eyes and ears are on the head
    radius[KP_FACE] *= P.head
    radius[KP_FEET] *= P.legs
    return radius, own
