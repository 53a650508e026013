"""Named poses (presets), hand shapes, explicit-pose validation and posing the mannequin.

A pose entry in a JobSpec is a preset name or a dict (docs/poses.md):
``{"preset": "waving", "mirror": false, "hands": "open", "joints": {"l_elbow": {"flex": 30}},
"offset": [0, 0, 0], "grounded": true}``. It is composed as preset -> hand shapes -> per-DOF joint
overrides -> mirror, then posed by forward kinematics (rig.py), put on the floor (its lowest mesh
vertex at z = 0) when grounded, and moved by the offset.

Angles are degrees, the DOFs and their limits are rig.py's. Pure numpy.
"""
from __future__ import annotations

import difflib
import math
import numbers

import numpy as np

from . import mannequin as mq
from . import rig

ENTRY_KEYS = ("preset", "mirror", "hands", "joints", "offset", "grounded")
MAX_OFFSET = 5.0  # metres, each component of an entry's offset
HAND_JOINTS = tuple(f"{f}{i}" for f in rig.FINGERS for i in (1, 2, 3))  # the posable finger joints


# --- hand shapes ------------------------------------------------------------------------------
def _hand(thumb, index, middle, ring, pinky):
    """Each finger: (base curl, base spread, middle curl, tip curl)."""
    shape = {}
    for name, (c1, s1, c2, c3) in zip(rig.FINGERS, (thumb, index, middle, ring, pinky)):
        shape[f"{name}1"] = {"curl": c1, "spread": s1}
        shape[f"{name}2"] = {"curl": c2}
        shape[f"{name}3"] = {"curl": c3}
    return shape


# Per finger joint (no side prefix: a shape applies to either hand, the DOFs being mirror
# symmetric). Thumb "spread" lifts it away from the palm, a finger's "spread" moves it towards the
# thumb (so the index spreads with a positive angle, the ring and pinky with a negative one).
HAND_SHAPES = {
    "flat": _hand((0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)),
    "open": _hand((-10, 35, 0, 0), (-5, 14, 0, 0), (-5, 2, 0, 0), (-5, -10, 0, 0), (-5, -22, 0, 0)),
    "relaxed": _hand((10, 15, 10, 10), (15, 4, 20, 10), (20, 0, 25, 12), (25, -4, 28, 14), (30, -8, 30, 15)),
    "fist": _hand((20, -14, 34, 52), (90, 0, 100, 60), (90, 0, 100, 60), (90, 0, 100, 60), (90, 0, 100, 60)),
    "point": _hand((20, -14, 34, 52), (0, 0, 0, 0), (90, 0, 100, 60), (90, 0, 100, 60), (90, 0, 100, 60)),
    "peace": _hand((25, -14, 34, 52), (0, 12, 0, 0), (0, -10, 0, 0), (90, 0, 100, 60), (90, 0, 100, 60)),
    "thumbs_up": _hand((-10, 30, 0, 0), (90, 0, 100, 60), (90, 0, 100, 60), (90, 0, 100, 60), (90, 0, 100, 60)),
    "grip": _hand((20, 5, 10, 15), (50, 0, 60, 40), (50, 0, 60, 40), (50, 0, 60, 40), (50, 0, 60, 40)),
}
HAND_DESCRIPTIONS = {
    "flat": "the rig's rest: fingers straight and together",
    "open": "fingers straight and spread, thumb out",
    "relaxed": "fingers softly curled, the hand at rest",
    "fist": "a closed fist, the thumb over the fingers",
    "point": "index finger straight, the others curled",
    "peace": "index and middle fingers straight in a V, the others curled",
    "thumbs_up": "a fist with the thumb straight",
    "grip": "half closed, as if holding a bar",
}


# --- mirroring ------------------------------------------------------------------------------
MIRROR_FLIPPED = frozenset({"side", "twist", "yaw", "roll"})  # centre-joint DOFs whose sign a mirror changes


def mirror_sign(joint: str, dof: str) -> float:
    """-1 when mirroring changes the sign of this DOF (a centre joint's side bend, twist, yaw or
    roll), else 1 (a sided joint's DOFs are mirror symmetric: its angles move to the other side)."""
    return -1.0 if rig.side_of(joint) is None and dof in MIRROR_FLIPPED else 1.0


def mirror_angles(angles: dict) -> dict:
    """The mirror image (left <-> right) of {joint: {dof: deg}}: the sided joints swap angles, the
    centre joints' side bend and twist and the root's yaw and roll change sign (mirror_sign)."""
    return {rig.mirror_name(joint): {d: mirror_sign(joint, d) * v + 0.0 for d, v in dofs.items()}
            for joint, dofs in angles.items()}


# --- presets --------------------------------------------------------------------------------
def _both(**joints):
    """The same angles on both sides: _both(shoulder={"abduct": 40}) -> l_shoulder and r_shoulder."""
    out = {}
    for name, dofs in joints.items():
        out[f"l_{name}"] = dict(dofs)
        out[f"r_{name}"] = dict(dofs)
    return out


def _preset(joints, hands="relaxed", offset=(0.0, 0.0, 0.0), grounded=True):
    return {"joints": joints, "hands": hands, "offset": [float(c) for c in offset], "grounded": grounded}


def _mirrored_preset(p):
    joints = mirror_angles(p["joints"])
    hands = p["hands"]
    if isinstance(hands, dict):
        hands = {"left": hands["right"], "right": hands["left"]}
    x, y, z = p["offset"]
    return {"joints": joints, "hands": hands, "offset": [-x if x else 0.0, y, z], "grounded": p["grounded"]}


_WALK_LEFT = _preset({
    "spine": {"twist": 4}, "chest": {"twist": 6}, "neck": {"twist": -6},
    "l_hip": {"flex": 24}, "l_knee": {"flex": 6}, "l_ankle": {"flex": 12},
    "r_hip": {"flex": -14}, "r_knee": {"flex": 18}, "r_ankle": {"flex": -18},
    "l_shoulder": {"flex": -22, "abduct": 6}, "l_elbow": {"flex": 12},
    "r_shoulder": {"flex": 26, "abduct": 6}, "r_elbow": {"flex": 35},
})

PRESETS = {
    "rest": _preset({}, hands="flat"),
    "a_pose": _preset(_both(shoulder={"abduct": 45}), hands="flat"),
    "t_pose": _preset(_both(shoulder={"abduct": 90}), hands="flat"),
    "standing": _preset({
        "root": {"roll": -2}, "spine": {"side": 3}, "chest": {"side": 2}, "neck": {"side": -2, "twist": 8},
        "l_hip": {"flex": 8, "abduct": 4, "twist": 10}, "l_knee": {"flex": 14}, "l_ankle": {"flex": 2},
        "r_hip": {"abduct": 2},
        "l_shoulder": {"flex": 4, "abduct": 8}, "l_elbow": {"flex": 22, "twist": 20},
        "r_shoulder": {"flex": -4, "abduct": 8}, "r_elbow": {"flex": 14, "twist": 20},
    }),
    "walk_left_step": _WALK_LEFT,
    "walk_right_step": _mirrored_preset(_WALK_LEFT),
    "running": _preset({
        "spine": {"flex": 10, "twist": 6}, "chest": {"flex": 4, "twist": 8}, "neck": {"flex": -10, "twist": -10},
        "l_hip": {"flex": 65}, "l_knee": {"flex": 95}, "l_ankle": {"flex": 5},
        "r_hip": {"flex": -22}, "r_knee": {"flex": 25}, "r_ankle": {"flex": -30},
        "l_shoulder": {"flex": -40, "abduct": 8}, "l_elbow": {"flex": 95},
        "r_shoulder": {"flex": 50, "abduct": 8}, "r_elbow": {"flex": 90},
    }, hands="fist"),
    "sitting": _preset({
        **_both(hip={"flex": 90, "abduct": 6}, knee={"flex": 90},
                shoulder={"flex": 10, "abduct": 8}, elbow={"flex": 40, "twist": -70}, wrist={"flex": 15}),
        "spine": {"flex": -4}, "neck": {"flex": 4},
    }),
    "sitting_floor": _preset({
        "l_hip": {"flex": 95, "abduct": 35, "twist": 60}, "l_knee": {"flex": 150},
        "r_hip": {"flex": 85, "abduct": 45, "twist": 60}, "r_knee": {"flex": 145},
        **_both(ankle={"invert": 25}, shoulder={"flex": 30, "abduct": 15}, elbow={"flex": 45, "twist": -60}),
        "spine": {"flex": 10}, "neck": {"flex": 6},
    }),
    "kneeling": _preset({
        **_both(knee={"flex": 100}, ankle={"flex": -50}, shoulder={"flex": 4, "abduct": 6}, elbow={"flex": 15}),
    }),
    "kneeling_one_knee": _preset({
        "r_hip": {"flex": -5}, "r_knee": {"flex": 107}, "r_ankle": {"flex": 17},
        "l_hip": {"flex": 90}, "l_knee": {"flex": 90},
        "l_shoulder": {"flex": 35}, "l_elbow": {"flex": 60},
        "r_shoulder": {"flex": 10, "abduct": 6}, "r_elbow": {"flex": 20},
        "spine": {"flex": 8},
    }),
    "squatting": _preset({
        **_both(hip={"flex": 120, "abduct": 18, "twist": 15}, knee={"flex": 145}, ankle={"flex": 28},
                shoulder={"flex": 75}, elbow={"flex": 15}),
        "spine": {"flex": 25}, "chest": {"flex": 10}, "neck": {"flex": -25},
    }),
    "crouching": _preset({
        "l_hip": {"flex": 105, "abduct": 12}, "l_knee": {"flex": 125}, "l_ankle": {"flex": 20},
        "r_hip": {"flex": 80, "abduct": 12}, "r_knee": {"flex": 110}, "r_ankle": {"flex": 28},
        **_both(shoulder={"flex": 45, "abduct": 10}, elbow={"flex": 75}),
        "spine": {"flex": 35}, "chest": {"flex": 10}, "neck": {"flex": -35},
    }),
    "jumping": _preset({
        **_both(shoulder={"flex": 160, "abduct": 20}, elbow={"flex": 10}, hip={"flex": 25, "abduct": 5},
                knee={"flex": 70}, ankle={"flex": -40}),
        "spine": {"flex": -10}, "neck": {"flex": -15},
    }, hands="open", offset=(0, 0, 0.35)),
    "star_jump": _preset({
        **_both(shoulder={"abduct": 145}, hip={"abduct": 30}, ankle={"flex": -35}),
        "neck": {"flex": -10},
    }, hands="open", offset=(0, 0, 0.3)),
    "lying_back": _preset({
        "root": {"yaw": 90, "pitch": -90},
        **_both(shoulder={"abduct": 20}, elbow={"flex": 10}, ankle={"flex": -25}, hip={"abduct": 6, "twist": 15}),
        "r_hip": {"flex": 35, "abduct": 6}, "r_knee": {"flex": 70},
    }),
    "lying_front": _preset({
        "root": {"yaw": 90, "pitch": 90},
        **_both(shoulder={"flex": 55, "abduct": 20, "twist": -15}, elbow={"flex": 90}, ankle={"flex": -45}),
        "spine": {"flex": -20}, "chest": {"flex": -15}, "neck": {"flex": -40},
    }),
    "reaching_up": _preset({
        **_both(shoulder={"flex": 170, "abduct": 12}, ankle={"flex": -35}),
        "neck": {"flex": -25}, "spine": {"flex": -5},
    }, hands="open"),
    "reaching_forward": _preset({
        "root": {"pitch": 25}, "l_hip": {"flex": 40}, "l_knee": {"flex": 20}, "l_ankle": {"flex": 5},
        "r_hip": {"flex": 5}, "r_ankle": {"flex": 10},
        **_both(shoulder={"flex": 125, "abduct": 6}, elbow={"flex": 5}),
        "spine": {"flex": 12}, "chest": {"flex": 8}, "neck": {"flex": -35}, "head": {"flex": -10},
    }, hands="open"),
    "pointing": _preset({
        "r_shoulder": {"flex": 85, "abduct": 25}, "r_elbow": {"flex": 5},
        "l_shoulder": {"abduct": 6}, "l_elbow": {"flex": 15},
        "neck": {"twist": -20}, "chest": {"twist": -10},
    }, hands={"left": "relaxed", "right": "point"}),
    "waving": _preset({
        "r_shoulder": {"abduct": 100, "twist": 85}, "r_elbow": {"flex": 85}, "r_wrist": {"deviate": 10},
        "l_shoulder": {"abduct": 6}, "l_elbow": {"flex": 15},
        "neck": {"side": -6}, "spine": {"side": 4},
    }, hands={"left": "relaxed", "right": "open"}),
    "arms_crossed": _preset({
        "l_shoulder": {"flex": 25, "abduct": 10, "twist": -70}, "l_elbow": {"flex": 105},
        "r_shoulder": {"flex": 30, "abduct": 10, "twist": -75}, "r_elbow": {"flex": 115},
        "neck": {"flex": -5},
    }),
    "hands_on_hips": _preset({
        **_both(shoulder={"flex": -10, "abduct": 45, "twist": -80}, elbow={"flex": 95}, wrist={"flex": -20}),
    }, hands="flat"),
    "fighting_stance": _preset({
        "root": {"yaw": -25},
        "l_hip": {"flex": 22, "abduct": 18, "twist": 10}, "l_knee": {"flex": 28}, "l_ankle": {"flex": 6, "invert": 8},
        "r_hip": {"flex": -18, "abduct": 20, "twist": 30}, "r_knee": {"flex": 24}, "r_ankle": {"flex": -8, "invert": 8},
        "spine": {"flex": 8, "twist": 5}, "chest": {"flex": 6, "twist": 5}, "neck": {"flex": 8, "twist": 18},
        "l_shoulder": {"flex": 49, "abduct": 28, "twist": -17}, "l_elbow": {"flex": 104},
        "r_shoulder": {"flex": 58, "abduct": 7, "twist": -39}, "r_elbow": {"flex": 108},
    }, hands="fist"),
    "dance_disco": _preset({
        "root": {"roll": 6}, "spine": {"side": -10}, "chest": {"side": -6}, "neck": {"side": 8, "twist": 20},
        "r_shoulder": {"flex": 150, "abduct": 35}, "r_elbow": {"flex": 5},
        "l_shoulder": {"flex": 20, "abduct": -10, "twist": -40}, "l_elbow": {"flex": 30},
        "l_hip": {"flex": 15, "abduct": 20, "twist": 30}, "l_knee": {"flex": 30},
    }, hands={"left": "relaxed", "right": "point"}),
    "dance_arabesque": _preset({
        "root": {"pitch": 30}, "spine": {"flex": -20}, "chest": {"flex": -10}, "neck": {"flex": -30},
        "l_hip": {"flex": 30}, "l_ankle": {"flex": -45},
        "r_hip": {"flex": -30, "twist": 20}, "r_ankle": {"flex": -45},
        "l_shoulder": {"flex": 110}, "l_elbow": {"flex": 5},
        "r_shoulder": {"abduct": 85, "flex": -10}, "r_elbow": {"flex": 5},
    }, hands="open"),
    "thinking": _preset({
        "r_shoulder": {"flex": 31, "abduct": -5, "twist": -41}, "r_elbow": {"flex": 134}, "r_wrist": {"flex": 15},
        "l_shoulder": {"flex": 10, "abduct": 2, "twist": -75}, "l_elbow": {"flex": 80},
        "neck": {"flex": 10, "side": -5}, "head": {"side": -5},
    }, hands={"left": "relaxed", "right": "fist"}),
    "bowing": _preset({
        "root": {"pitch": 30}, **_both(hip={"flex": 30}, shoulder={"flex": 22, "abduct": -4}, elbow={"flex": 8}),
        "spine": {"flex": 12}, "chest": {"flex": 5}, "neck": {"flex": 8},
    }, hands="flat"),
    "cheering": _preset({
        **_both(shoulder={"abduct": 130, "flex": 20}, elbow={"flex": 20}),
        "neck": {"flex": -15}, "l_hip": {"flex": 10}, "l_knee": {"flex": 12},
    }, hands="fist"),
    "lunge": _preset({
        "l_hip": {"flex": 80}, "l_knee": {"flex": 90}, "r_hip": {"flex": -25}, "r_knee": {"flex": 70},
        "r_ankle": {"flex": -10},
        **_both(shoulder={"flex": -10, "abduct": 45, "twist": -80}, elbow={"flex": 95}, wrist={"flex": -20}),
    }, hands="flat"),
}
PRESET_DESCRIPTIONS = {
    "rest": "the rig's rest pose: standing straight, arms hanging, fingers straight",
    "a_pose": "arms 45 degrees out to the sides, palms down (the rigging A-pose)",
    "t_pose": "arms straight out to the sides, palms down",
    "standing": "relaxed standing, weight on the right leg, arms loose",
    "walk_left_step": "walking, the left heel striking, the right arm forward",
    "walk_right_step": "walking, the right heel striking, the left arm forward (the mirror of walk_left_step)",
    "running": "running, the left knee driving up, pushing off the right toes",
    "sitting": "sitting on a chair (not rendered): thighs level, shins upright, hands on the thighs",
    "sitting_floor": "sitting cross-legged on the floor",
    "kneeling": "kneeling upright on both knees",
    "kneeling_one_knee": "on the right knee, the left foot planted in front",
    "squatting": "deep squat, heels down, arms forward",
    "crouching": "crouched low and leaning forward, the right foot back, hands ready in front",
    "jumping": "in the air, knees bent, arms up",
    "star_jump": "in the air, arms and legs spread wide",
    "lying_back": "lying on the back, the right knee up",
    "lying_front": "lying face down, propped on the forearms",
    "reaching_up": "on tiptoe, both arms stretched up",
    "reaching_forward": "leaning forward, both arms stretched out ahead",
    "pointing": "pointing forward and to the right with the right index finger",
    "waving": "waving with the right hand, palm forward",
    "arms_crossed": "standing with the arms folded across the chest",
    "hands_on_hips": "standing with both hands on the hips, elbows out",
    "fighting_stance": "boxing guard, left foot forward, fists up",
    "dance_disco": "disco: right arm pointing up across, hips out",
    "dance_arabesque": "ballet arabesque on the left toes, the right leg raised behind",
    "thinking": "right fist at the chin, the left arm across the waist",
    "bowing": "bowing from the hips",
    "cheering": "both fists raised in a V",
    "lunge": "forward lunge on the left leg, hands on the hips",
}


# --- errors -------------------------------------------------------------------------------
def _fail(field: str, message: str):
    from ..errors import SpecError

    raise SpecError(field, message)


def _fmt(v) -> str:
    return f"{float(v):g}"


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _number(v, field: str) -> float:
    if not _is_number(v):
        _fail(field, f"expected a number, got {_describe(v)}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        text = repr(v)
        _fail(field, f"expected a finite number, got {text if len(text) <= 24 else text[:20] + '...'}")
    return f


def _describe(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, str):
        return f"a string ({v!r})"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, (list, tuple)):
        return "a list"
    return f"{type(v).__name__} ({v!r})"


def _closest(name, choices) -> str:
    """'; did you mean ...? Allowed: ...' for an unknown name."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    allowed = ", ".join(choices)
    return f"; did you mean {' or '.join(repr(c) for c in close)}? Allowed: {allowed}" if close else f"; allowed: {allowed}"


def _round(v: float) -> float:
    return round(float(v), 4) + 0.0  # + 0.0 turns -0.0 into 0.0 so equal poses hash equally


# --- angles -----------------------------------------------------------------------------
POSABLE_JOINTS = tuple(n for n in rig.JOINT_NAMES if rig.JOINTS[n].dofs)


def limit_problem(joint: str, dof: str, value: float) -> str | None:
    """None when value is within the DOF's limits, else the message naming them."""
    d = rig.dof(joint, dof)
    if d.lo <= value <= d.hi:
        return None
    return f"got {_fmt(value)}, allowed {_fmt(d.lo)}..{_fmt(d.hi)} ({joint} {dof}: {d.meaning})"


def empty_angles() -> dict:
    """Every posable joint with every DOF at 0 (the rest pose)."""
    return {j: {d.name: 0.0 for d in rig.JOINTS[j].dofs} for j in POSABLE_JOINTS}


def hand_angles(shape: str, side: str) -> dict:
    """{joint: {dof: deg}} of one hand ("l" or "r") in a named shape."""
    return {f"{side}_{j}": dict(dofs) for j, dofs in HAND_SHAPES[shape].items()}


def _hands_lr(hands) -> dict:
    return {"left": hands, "right": hands} if isinstance(hands, str) else dict(hands)


# --- entries --------------------------------------------------------------------------------
def _shape_name(v, field: str) -> str:
    if not isinstance(v, str):
        _fail(field, f"expected a hand shape name, got {_describe(v)}; allowed: {', '.join(HAND_SHAPES)}")
    if v not in HAND_SHAPES:
        _fail(field, f"unknown hand shape {v!r}{_closest(v, HAND_SHAPES)}")
    return v


def normalize_pose_entry(entry, field: str) -> dict:
    """Validate one pose of a JobSpec and fill every default: a preset name or a dict with the
    optional keys preset, mirror, hands, joints, offset, grounded. Returns {"preset", "mirror",
    "hands" ({"left", "right"} or None: the preset's), "joints" (the overrides, sorted, rounded to
    4 decimals), "offset" (the preset's unless given), "grounded" (likewise)}. Raises SpecError
    naming the exact field (e.g. subjects[0].poses[2].joints.l_elbow.flex) and what is allowed."""
    if isinstance(entry, str):
        entry = {"preset": entry}
    if not isinstance(entry, dict):
        _fail(field, f"expected a preset name or an object, got {_describe(entry)}")
    unknown = [k for k in entry if k not in ENTRY_KEYS]
    if unknown:
        k = unknown[0]
        _fail(f"{field}.{k}", f"unknown key {k!r}{_closest(k, ENTRY_KEYS)}")

    preset = entry.get("preset", "rest")
    if not isinstance(preset, str):
        _fail(f"{field}.preset", f"expected a preset name, got {_describe(preset)}; allowed: {', '.join(PRESETS)}")
    if preset not in PRESETS:
        _fail(f"{field}.preset", f"unknown preset {preset!r}{_closest(preset, PRESETS)}")
    base = PRESETS[preset]

    mirror = entry.get("mirror", False)
    if not isinstance(mirror, bool):
        _fail(f"{field}.mirror", f"expected true or false, got {_describe(mirror)}")

    hands = entry.get("hands")
    if hands is not None:
        if isinstance(hands, str):
            shape = _shape_name(hands, f"{field}.hands")
            hands = {"left": shape, "right": shape}
        elif isinstance(hands, dict):
            bad = [k for k in hands if k not in ("left", "right")]
            if bad:
                _fail(f"{field}.hands.{bad[0]}", f"unknown key {bad[0]!r}; allowed: left, right")
            default = _hands_lr(base["hands"])
            hands = {side: default[side] if hands.get(side) is None
                     else _shape_name(hands[side], f"{field}.hands.{side}") for side in ("left", "right")}
        else:
            _fail(f"{field}.hands", f"expected null, a hand shape name or {{\"left\": shape, \"right\": shape}}, "
                                    f"got {_describe(hands)}; shapes: {', '.join(HAND_SHAPES)}")

    joints_in = entry.get("joints", {})
    if joints_in is None:
        joints_in = {}
    if not isinstance(joints_in, dict):
        _fail(f"{field}.joints", f"expected an object {{joint: {{dof: degrees}}}}, got {_describe(joints_in)}")
    joints = {}
    for jname in sorted(joints_in, key=str):
        jfield = f"{field}.joints.{jname}"
        if jname not in rig.JOINTS or not rig.JOINTS[jname].dofs:
            why = (f"{jname!r} has no degrees of freedom (an end point)" if jname in rig.JOINTS
                   else f"unknown joint {jname!r}")
            _fail(jfield, f"{why}{_closest(jname, POSABLE_JOINTS)}")
        dofs_in = joints_in[jname]
        allowed = [d.name for d in rig.JOINTS[jname].dofs]
        if not isinstance(dofs_in, dict):
            _fail(jfield, f"expected an object {{dof: degrees}} with dofs {', '.join(allowed)}, "
                          f"got {_describe(dofs_in)}")
        dofs = {}
        for dname in sorted(dofs_in, key=str):
            dfield = f"{jfield}.{dname}"
            if dname not in allowed:
                _fail(dfield, f"unknown degree of freedom {dname!r} for {jname}; allowed: {', '.join(allowed)}")
            value = _round(_number(dofs_in[dname], dfield))
            problem = limit_problem(jname, dname, value)
            if problem:
                _fail(dfield, problem)
            dofs[dname] = value
        if dofs:
            joints[jname] = dofs

    offset = entry.get("offset")
    if offset is None:
        offset = list(base["offset"])
    if not isinstance(offset, (list, tuple)) or len(offset) != 3:
        _fail(f"{field}.offset", f"expected [x, y, z] in metres, got {_describe(offset)}")
    out_offset = []
    for i, c in enumerate(offset):
        v = _round(_number(c, f"{field}.offset[{i}]"))
        if not -MAX_OFFSET <= v <= MAX_OFFSET:
            _fail(f"{field}.offset[{i}]", f"got {_fmt(v)}, allowed {-MAX_OFFSET:g}..{MAX_OFFSET:g} (metres)")
        out_offset.append(v)

    grounded = entry.get("grounded")
    if grounded is None:
        grounded = base["grounded"]
    if not isinstance(grounded, bool):
        _fail(f"{field}.grounded", f"expected true or false, got {_describe(grounded)}")

    out = {"preset": preset, "mirror": mirror, "hands": hands, "joints": joints, "offset": out_offset,
           "grounded": grounded}
    angles, _, _ = pose_angles(out)
    for j, dofs in angles.items():  # presets and hand shapes are valid (tested): a safety net
        for d, v in dofs.items():
            problem = limit_problem(j, d, v)
            if problem:
                _fail(f"{field}.joints.{rig.mirror_name(j) if mirror else j}.{d}", problem)
    return out


def pose_angles(entry) -> tuple[dict, np.ndarray, bool]:
    """(angles {joint: {dof: deg}} for every posable joint, offset (3,), grounded) of a normalized
    entry: preset -> hand shapes -> joint overrides -> mirror. A raw entry is normalized first."""
    if isinstance(entry, str) or not isinstance(entry, dict) or set(entry) != set(ENTRY_KEYS):
        entry = normalize_pose_entry(entry, "pose")
    preset = PRESETS[entry["preset"]]
    angles = empty_angles()

    def apply(src):
        for j, dofs in src.items():
            angles[j].update({d: float(v) for d, v in dofs.items()})

    apply(preset["joints"])
    hands = _hands_lr(entry["hands"] if entry["hands"] is not None else preset["hands"])
    apply(hand_angles(hands["left"], "l"))
    apply(hand_angles(hands["right"], "r"))
    apply(entry["joints"])
    offset = np.array(entry["offset"], float)
    if entry["mirror"]:
        angles = mirror_angles(angles)
        offset[0] = -offset[0]
    angles = {j: angles[j] for j in POSABLE_JOINTS}
    return angles, offset + 0.0, bool(entry["grounded"])


def ground(body: mq.Mannequin, posed: rig.Posed) -> rig.Posed:
    """The same pose moved up or down so that its lowest mesh vertex is at z = 0."""
    lowest = mq.posed_vertices(body, posed)[:, 2].min()
    return rig.Posed(posed.positions - np.array([0.0, 0.0, lowest]), posed.rotations)


def pose_body(body: mq.Mannequin, entry) -> rig.Posed:
    """Forward kinematics of a (normalized) pose entry on a mannequin: grounded when asked (the
    lowest mesh vertex on z = 0), then moved by the offset."""
    angles, offset, grounded = pose_angles(entry)
    posed = rig.forward_kinematics(body.rest, angles)
    if grounded:
        posed = ground(body, posed)
    return rig.Posed(posed.positions + offset, posed.rotations)


def placed(posed: rig.Posed, place: dict | None) -> rig.Posed:
    """A (grounded) pose moved to a subject's place on the floor (spec ``place``): turned about the
    vertical axis through the origin by ``facing`` degrees (counter-clockwise seen from above; 0 =
    facing -Y as the mannequin does), then moved by ``position`` [x, y]. None: the pose as it is."""
    if not place:
        return posed
    a = np.radians(place["facing"])
    turn = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    shift = np.array([*place["position"], 0.0])
    return rig.Posed(posed.positions @ turn.T + shift, np.einsum("ij,njk->nik", turn, posed.rotations))


def frame_entry(entries: list, f: int):
    """A subject's pose entry in frame f: a 1-pose subject holds its pose in every frame."""
    return entries[0] if len(entries) == 1 else entries[f]


# --- documentation ------------------------------------------------------------------------
def _axis_text(axis) -> str:
    names = {(1, 0, 0): "+X", (-1, 0, 0): "-X", (0, 1, 0): "+Y", (0, -1, 0): "-Y", (0, 0, 1): "+Z", (0, 0, -1): "-Z"}
    key = tuple(int(round(c)) if abs(abs(c) - 1) < 1e-9 or abs(c) < 1e-9 else None for c in axis)
    return names.get(key, "(" + ", ".join(f"{c:.2f}" for c in axis) + ")")


def joint_limits_markdown() -> str:
    """The table of every posable joint's DOFs (docs/poses.md holds exactly this text)."""
    lines = ["| joint | DOF | min | max | positive means | axis (left side) |",
             "|---|---|---:|---:|---|---|"]
    for j in POSABLE_JOINTS:
        if rig.side_of(j) == "r":
            continue
        shown = f"`{j}`, `{rig.mirror_name(j)}`" if rig.side_of(j) else f"`{j}`"
        for d in rig.JOINTS[j].dofs:
            lines.append(f"| {shown} | `{d.name}` | {_fmt(d.lo)} | {_fmt(d.hi)} | {d.meaning} | {_axis_text(d.axis)} |")
    return "\n".join(lines) + "\n"


def presets_markdown() -> str:
    """The preset list of docs/poses.md."""
    lines = []
    for name, p in PRESETS.items():
        extra = []
        if p["hands"] != "relaxed":
            h = _hands_lr(p["hands"])
            extra.append(f"hands {h['left']}" if h["left"] == h["right"]
                         else f"left hand {h['left']}, right hand {h['right']}")
        if any(p["offset"]):
            extra.append("offset [" + ", ".join(_fmt(c) for c in p["offset"]) + "]")
        if not p["grounded"]:
            extra.append("not grounded")
        lines.append(f"- `{name}`: {PRESET_DESCRIPTIONS[name]}" + (f" ({'; '.join(extra)})" if extra else ""))
    return "\n".join(lines) + "\n"


def hand_shapes_markdown() -> str:
    """The hand shape list of docs/poses.md."""
    return "\n".join(f"- `{name}`: {HAND_DESCRIPTIONS[name]}" for name in HAND_SHAPES) + "\n"
