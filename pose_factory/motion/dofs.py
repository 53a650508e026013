"""A joint's local rotation <-> its DOF angles (rig.py), and quaternion slerp.

``solve_dofs`` decomposes a rotation into the joint's DOFs: an Euler decomposition about the DOF
axes when they are orthonormal (a joint with fewer than three DOFs is completed to three and the
rest dropped: the nearest rotation it can make), numerically for the thumb's oblique axes; of the
two Euler solutions it takes the one within the limits and nearest the previous angles. The result
may still exceed a limit: the caller clamps and reports. Pure numpy.
"""
from __future__ import annotations

import numpy as np

from ..render import rig


def _wrap(a):
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def _axes(joint):
    return [rig.dof_axis(joint, d) for d in rig.JOINTS[joint].dofs]


def _orthonormal(axes) -> bool:
    return all(abs(axes[i] @ axes[k]) < 1e-9 for i in range(len(axes)) for k in range(i + 1, len(axes)))


def _euler_candidates(axes, r) -> list:
    """Angle sets (degrees) with R = Rot(u1,a) Rot(u2,b) Rot(u3,c) for orthonormal DOF axes (a
    joint with fewer DOFs is completed to three, the rest dropped): both Euler solutions."""
    u = list(axes)
    n = len(u)
    if n == 1:
        u2 = np.cross(u[0], [1.0, 0, 0]) if abs(u[0][0]) < 0.9 else np.cross(u[0], [0, 1.0, 0])
        u.append(u2 / np.linalg.norm(u2))
    if len(u) == 2:
        u.append(np.cross(u[0], u[1]))
    sign = 1.0
    if np.linalg.det(np.stack(u, 1)) < 0:
        u[2], sign = -u[2], -1.0
    b_ = np.stack(u, 1)
    m = b_.T @ r @ b_  # = Rx(a) Ry(b) Rz(c)
    if n == 1:  # the rotation about the one axis nearest to R
        return [np.array([np.degrees(np.arctan2(m[2, 1] - m[1, 2], m[1, 1] + m[2, 2]))])]
    b = np.degrees(np.arcsin(np.clip(m[0, 2], -1.0, 1.0)))
    a = np.degrees(np.arctan2(-m[1, 2], m[2, 2]))
    c = np.degrees(np.arctan2(-m[0, 1], m[0, 0]))
    sols = [np.array([a, b, sign * c]), _wrap(np.array([a + 180.0, 180.0 - b, sign * (c + 180.0)]))]
    return [s[:n] for s in sols]


def _numeric(joint, r, start) -> np.ndarray:
    """Least-squares DOF angles for oblique axes (the thumb): Gauss-Newton on the rotation error."""
    x = np.array(start, float)
    names = [d.name for d in rig.JOINTS[joint].dofs]
    for _ in range(30):
        def err(v):
            e = rig.local_rotation(joint, dict(zip(names, v))).T @ r
            return np.array([e[2, 1] - e[1, 2], e[0, 2] - e[2, 0], e[1, 0] - e[0, 1]]) / 2
        e0 = err(x)
        jac = np.stack([(err(x + h) - e0) / 1e-4 for h in np.eye(len(x)) * 1e-4], 1)
        step = np.linalg.lstsq(jac, -e0, rcond=None)[0]
        x = x + step
        if np.abs(step).max() < 1e-7:
            break
    return x


def solve_dofs(joint, r, previous) -> np.ndarray:
    dofs = rig.JOINTS[joint].dofs
    lo, hi = np.array([d.lo for d in dofs]), np.array([d.hi for d in dofs])
    axes = _axes(joint)
    cands = _euler_candidates(axes, r) if _orthonormal(axes) else [_numeric(joint, r, previous)]

    def cost(s):
        over = np.maximum(lo - s, 0) + np.maximum(s - hi, 0)
        return over.sum() * 1000 + np.abs(s - previous).sum()
    return min(cands, key=cost)


def quaternion(r) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix (Shepperd's method)."""
    r = np.asarray(r, float)
    t = np.trace(r)
    if t > 0:
        s = np.sqrt(t + 1.0) * 2
        return np.array([0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    i = int(np.argmax(np.diag(r)))
    j, k = (i + 1) % 3, (i + 2) % 3
    s = np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k]) * 2
    q = np.empty(4)
    q[0] = (r[k, j] - r[j, k]) / s
    q[1 + i] = 0.25 * s
    q[1 + j] = (r[j, i] + r[i, j]) / s
    q[1 + k] = (r[k, i] + r[i, k]) / s
    return q


def matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def slerp(qa, qb, t: float) -> np.ndarray:
    """Spherical interpolation along the shorter arc, t in [0, 1]."""
    qa, qb = np.asarray(qa, float), np.asarray(qb, float)
    d = float(qa @ qb)
    if d < 0:
        qb, d = -qb, -d
    if d > 0.9995:  # nearly equal: linear, normalised
        q = qa + t * (qb - qa)
        return q / np.linalg.norm(q)
    th = np.arccos(d)
    return (np.sin((1 - t) * th) * qa + np.sin(t * th) * qb) / np.sin(th)
