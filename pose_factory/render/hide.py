"""Choosing joints: a `hide` list of joint names and groups, applied to POSE_KEYPOINT frames.

A hidden point is written as not found (0, 0, 0) in its part, as every reader skips it, and is
taken out of our `occluded` field too, so no drawing mode shows it. Its true place is kept in our
own field of the person's entry (openpose.OWN_KEY), so nothing is lost and `unhide` gives back
exactly the frame before:

    person["pose_factory"]["hidden"] = {
        "joints": ["left_hand", "nose"],                   # the names hidden, as written
        "keypoints": {part: [x, y, c, ...]},  # the part's triples the hide replaced (0, 0, 0 elsewhere)
        "occluded": {part: [x, y, c, ...]}}   # the covered triples it took out of "occluded"

(parts: pose_keypoints_2d, hand_left_keypoints_2d, hand_right_keypoints_2d, face_keypoints_2d,
foot_keypoints_2d). Depths stay where they are. Hiding works on the stored keypoints: the loaders
redraw the skeleton with openpose.draw_pose, never re-render.

Names (parse_hide): the 18 body points by openpose.BODY_NAMES (nose, neck, r_shoulder, ...,
l_ear; left_/right_ spelled out is accepted: left_wrist), the 6 foot points (l_big_toe,
l_small_toe, l_heel, r_...: COCO-WholeBody's order, core's foot_keypoints_2d), and groups (GROUPS).
A name may carry a person: "1:left_hand" hides person 1's left hand only (person k: the k-th entry
of the frame's people, the Scene chain's person k in our batches); a bare name hides it on every
person.
"""
from __future__ import annotations

import copy

from .openpose import BODY_NAMES, OWN_KEY

BODY = "pose_keypoints_2d"
LHAND, RHAND, FACE = "hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d"
FOOT = "foot_keypoints_2d"  # core's whole-body feet (6 points), where a frame has them
FOOT_NAMES = ("l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel")
ALL = "all"  # a whole part, every point of it

_B = {n: i for i, n in enumerate(BODY_NAMES)}
_F = {n: i for i, n in enumerate(FOOT_NAMES)}


def _body(*names):
    return ((BODY, tuple(_B[n] for n in names)),)


def _foot(*names):
    return ((FOOT, tuple(_F[n] for n in names)),)


# group -> ((part, point indices or ALL), ...). An arm holds its hand, a leg its foot: hiding an
# arm leaves no hand floating in the air.
GROUPS = {
    "face": ((FACE, ALL),),
    "head": ((FACE, ALL),) + _body("nose", "r_eye", "l_eye", "r_ear", "l_ear"),
    "eyes": _body("r_eye", "l_eye"),
    "ears": _body("r_ear", "l_ear"),
    "left_hand": ((LHAND, ALL),),
    "right_hand": ((RHAND, ALL),),
    "hands": ((LHAND, ALL), (RHAND, ALL)),
    "left_arm": _body("l_shoulder", "l_elbow", "l_wrist") + ((LHAND, ALL),),
    "right_arm": _body("r_shoulder", "r_elbow", "r_wrist") + ((RHAND, ALL),),
    "arms": _body("l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist") + ((LHAND, ALL), (RHAND, ALL)),
    "left_foot": _foot("l_big_toe", "l_small_toe", "l_heel"),
    "right_foot": _foot("r_big_toe", "r_small_toe", "r_heel"),
    "feet": ((FOOT, ALL),),
    "left_leg": _body("l_hip", "l_knee", "l_ankle") + _foot("l_big_toe", "l_small_toe", "l_heel"),
    "right_leg": _body("r_hip", "r_knee", "r_ankle") + _foot("r_big_toe", "r_small_toe", "r_heel"),
    "legs": _body("l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle") + ((FOOT, ALL),),
}
POINTS = {**{n: ((BODY, (i,)),) for n, i in _B.items()}, **{n: ((FOOT, (i,)),) for n, i in _F.items()}}
NAMES = tuple(GROUPS) + BODY_NAMES + FOOT_NAMES  # what a hide list may name (besides aliases)
ALIASES = {"left_" + n[2:]: n for n in BODY_NAMES + FOOT_NAMES if n.startswith("l_")}
ALIASES.update({"right_" + n[2:]: n for n in BODY_NAMES + FOOT_NAMES if n.startswith("r_")})
ALIASES.update({"l_hand": "left_hand", "r_hand": "right_hand", "l_arm": "left_arm", "r_arm": "right_arm",
                "l_leg": "left_leg", "r_leg": "right_leg", "l_foot": "left_foot", "r_foot": "right_foot",
                "hand": "hands", "arm": "arms", "leg": "legs", "foot": "feet", "eye": "eyes", "ear": "ears"})
MAX_PERSON = 63  # a "k:" prefix beyond this is refused (our batches hold at most 8 people)


def allowed_text() -> str:
    """The allowed names, for error messages and tooltips."""
    return (f"a comma-separated list of groups ({', '.join(GROUPS)}), body points ({', '.join(BODY_NAMES)}; "
            f"left_/right_ spelled out too, e.g. left_wrist), foot points ({', '.join(FOOT_NAMES)}), each optionally "
            "'k:' for person k only (e.g. 1:left_hand), or empty")


def parse_hide(text) -> list[tuple[int | None, str]]:
    """A hide list -> [(person or None for every person, canonical name)], in order, repeats
    dropped. ValueError naming the bad entry and the allowed names."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError(f"hide: got {type(text).__name__}, allowed: {allowed_text()}")
    out = []
    for raw in text.replace(";", ",").split(","):
        item = raw.strip().lower().replace(" ", "_").replace("-", "_")
        if not item:
            continue
        person = None
        if ":" in item:
            k, _, item = item.partition(":")
            k = k.strip().strip("_")
            item = item.strip("_")
            if not k.isdigit() or int(k) > MAX_PERSON:
                raise ValueError(f"hide: {raw.strip()!r} has person {k!r} (a person number 0..{MAX_PERSON} before "
                                 f"':'), allowed: {allowed_text()}")
            person = int(k)
        name = ALIASES.get(item, item)
        if name not in GROUPS and name not in POINTS:
            raise ValueError(f"hide: unknown joint or group {raw.strip()!r}, allowed: {allowed_text()}")
        if (person, name) not in out:
            out.append((person, name))
    return out


def validate_hide(text):
    """True, or the error message (a node's VALIDATE_INPUTS)."""
    try:
        parse_hide(text)
    except ValueError as e:
        return str(e)
    return True


def _targets(names):
    """[(person or None, canonical name)] -> {person or None: {part: set of indices or ALL}}."""
    out = {}
    for person, name in names:
        parts = out.setdefault(person, {})
        for part, idx in GROUPS.get(name) or POINTS[name]:
            if idx == ALL or parts.get(part) == ALL:
                parts[part] = ALL
            else:
                parts.setdefault(part, set()).update(idx)
    return out


def _merge(a: dict, b: dict) -> dict:
    out = {part: (ALL if v == ALL else set(v)) for part, v in a.items()}
    for part, idx in b.items():
        if idx == ALL or out.get(part) == ALL:
            out[part] = ALL
        else:
            out.setdefault(part, set()).update(idx)
    return out


def _take(flat, idx):
    """(the list with the chosen points 0, 0, 0, the taken triples with 0, 0, 0 elsewhere)."""
    flat = list(flat)
    taken = [0.0] * len(flat)
    for j in range(len(flat) // 3):
        if idx == ALL or j in idx:
            taken[3 * j:3 * j + 3] = flat[3 * j:3 * j + 3]
            flat[3 * j:3 * j + 3] = [0.0, 0.0, 0.0]
    return flat, taken


def _add(old, new):
    """Two taken lists of one part, together (a point taken in either)."""
    if not old:
        return new
    if not new:
        return old
    return [n if any(new[3 * (i // 3):3 * (i // 3) + 3]) else o for i, (o, n) in enumerate(zip(old, new))]


def hide_person(person: dict, parts: dict, names: list) -> dict:
    """A copy of one person's entry with the points of `parts` ({part: indices or ALL}) hidden,
    `names` recorded. Hides on top of an earlier hide (both kept, unhide undoes both)."""
    out = copy.deepcopy(person)
    if not parts:
        return out
    own = out.get(OWN_KEY) if isinstance(out.get(OWN_KEY), dict) else None
    occluded = (own or {}).get("occluded") or {}
    hidden = {"joints": [], "keypoints": {}, "occluded": {}}
    if own and "hidden" in own:
        hidden = own["hidden"]
        if not (isinstance(hidden, dict) and isinstance(hidden.get("keypoints"), dict)
                and isinstance(hidden.get("occluded"), dict) and isinstance(hidden.get("joints", []), list)):
            raise ValueError(f"{OWN_KEY}.hidden must be a dict with joints (a list), keypoints and occluded (dicts "
                             "of part lists), as hide_frame writes it")
    for part, idx in parts.items():
        flat = out.get(part)
        if isinstance(flat, (list, tuple)) and flat:
            out[part], taken = _take(flat, idx)
            if any(taken):
                hidden["keypoints"][part] = _add(hidden["keypoints"].get(part), taken)
        cov = occluded.get(part)
        if isinstance(cov, (list, tuple)) and cov:
            occluded[part], taken = _take(cov, idx)
            if any(taken):
                hidden["occluded"][part] = _add(hidden["occluded"].get(part), taken)
    hidden["joints"] = hidden.get("joints", []) + [n for n in names if n not in hidden.get("joints", [])]
    out.setdefault(OWN_KEY, {})["hidden"] = hidden  # even when nothing was there to hide: what was asked
    return out


def hide_frame(frame: dict, hide) -> dict:
    """A copy of a POSE_KEYPOINT frame with the hide list (text or parse_hide's list) applied to
    its people. A "k:" name of a person the frame lacks hides nothing (a frame where that person
    is absent)."""
    names = parse_hide(hide) if not isinstance(hide, list) else hide
    if not names:
        return frame
    targets = _targets(names)
    every = targets.get(None, {})
    out = dict(frame)
    people = []
    for k, person in enumerate(frame.get("people", [])):
        parts = _merge(every, targets.get(k, {}))
        mine = [("" if p is None else f"{p}:") + n for p, n in names if p in (None, k)]
        people.append(hide_person(person, parts, mine) if parts else person)
    out["people"] = people
    return out


def body_hidden(hide, people: int) -> list[list[int]]:
    """For each of `people` persons, the body points (indices into openpose.BODY_NAMES) the hide
    list takes away: what the 3D viewer's OpenPose preview (body only) leaves out."""
    targets = _targets(parse_hide(hide))
    out = []
    for k in range(people):
        body = _merge(targets.get(None, {}), targets.get(k, {})).get(BODY, set())
        out.append(list(range(len(BODY_NAMES))) if body == ALL else sorted(body))
    return out


def hide_frames(frames: list, hide) -> list:
    names = parse_hide(hide)
    return [hide_frame(f, names) for f in frames] if names else frames


def unhide_person(person: dict) -> dict:
    """A copy of one person's entry with every hidden point back where it was."""
    own = person.get(OWN_KEY)
    if not isinstance(own, dict) or not isinstance(own.get("hidden"), dict):
        return copy.deepcopy(person)
    out = copy.deepcopy(person)
    hidden = out[OWN_KEY].pop("hidden")

    def put(target, taken):
        for part, tk in (taken or {}).items():
            flat = list(target.get(part) or [0.0] * len(tk))
            for j in range(len(tk) // 3):
                if any(tk[3 * j:3 * j + 3]):
                    flat[3 * j:3 * j + 3] = tk[3 * j:3 * j + 3]
            target[part] = flat

    put(out, hidden.get("keypoints"))
    if hidden.get("occluded"):
        put(out[OWN_KEY].setdefault("occluded", {}), hidden["occluded"])
    if not out[OWN_KEY]:
        del out[OWN_KEY]
    return out


def unhide_frame(frame: dict) -> dict:
    out = dict(frame)
    out["people"] = [unhide_person(p) for p in frame.get("people", [])]
    return out
