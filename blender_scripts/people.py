"""One Person per subject of a pose batch: what render_batch asks of everyone in the scene, the
procedural mannequin (MannequinPerson) or a user's rig (user_rig.RigPerson), placed on the floor.

The Person interface (every kind of subject implements it):
    index: int                  k, the subject's place in spec["subjects"]
    objects: list               its Blender mesh objects, each with pass_index = its part label
                                (mannequin.PARTS, 1..17; never 0: the mask is index > 0, and a ray
                                that first hits an object of no person counts as a prop)
    radius: np.ndarray          (130,) visibility radius per keypoint (mannequin.visibility_rules)
    own_parts: list[set[int]]   (130,) part labels that count as the keypoint's own
    report: dict | None         the rig report (None for a mannequin)
    pose(f)                     sets Blender to frame f (a 1-pose subject holds its pose)
    keypoints(f) -> (130, 3)    world points, mannequin layout (KP_BODY, KP_LHAND, KP_RHAND, KP_FACE);
                                NaN rows: the rig has no such point
    estimated() -> (130,) bool  estimated, not from a bone (a rig's face points)
    framing_vertices(f) -> (N, 3)  world points for auto-framing
    root(f) -> (3,)             (optional) the point a camera that follows the subject follows

Each person's materials get pass_index k + 1 (Cycles' material index pass: the instance map);
props' materials keep 0.
"""
from __future__ import annotations

import numpy as np

from blender_scripts import scene as S
from pose_factory.render import mannequin as mq, poses


class MannequinPerson:
    """The procedural mannequin of a subject: its poses grounded (as one mannequin's always were),
    then moved to the subject's place (poses.placed)."""

    report = None

    def __init__(self, scene, subject: dict, index: int):
        self.index = index
        body = mq.build(subject["height"], subject["build"], **({"shape": subject["shape"]} if subject.get("shape") else {}))
        self.body = body
        self.posed = [poses.placed(poses.pose_body(body, e), subject.get("place")) for e in subject["poses"]]
        self.rig = S.Rig(scene, body)
        self.objects = list(self.rig.parts)
        self.radius, self.own_parts = mq.visibility_rules()

    def _posed(self, f: int):
        return poses.frame_entry(self.posed, f)

    def pose(self, f: int) -> None:
        self.rig.pose(self._posed(f))

    def keypoints(self, f: int) -> np.ndarray:
        return mq.posed_keypoints(self.body, self._posed(f))

    def estimated(self) -> np.ndarray:
        return np.zeros(mq.N_KEYPOINTS, bool)

    def framing_vertices(self, f: int) -> np.ndarray:
        return mq.posed_vertices(self.body, self._posed(f))

    def root(self, f: int) -> np.ndarray:
        return self._posed(f).position("root")


def make_person(scene, spec: dict, k: int):
    """Person k of the spec: a MannequinPerson, or a user_rig.RigPerson for a rig subject (its file
    fetched into the work folder as spec["rig_files"][k])."""
    subject = spec["subjects"][k]
    if subject["type"] == "mannequin":
        return MannequinPerson(scene, subject, k)
    if subject["type"] == "rig":
        from blender_scripts import user_rig

        return user_rig.RigPerson(scene, subject, spec["rig_files"][k], k)
    raise ValueError(f"subjects[{k}].type: got {subject['type']!r}, allowed: mannequin, rig")


def build_people(scene, spec: dict) -> list:
    """Every subject of the spec as a Person, in order, each one's materials marked with its
    instance (pass_index k + 1); a material two people share is copied, so each has its own."""
    people = [make_person(scene, spec, k) for k in range(len(spec["subjects"]))]
    owner = {}
    for person in people:
        for ob in person.objects:
            for slot in ob.material_slots:
                mat = slot.material
                if mat is None:
                    continue
                if owner.get(mat.name, person.index) != person.index:
                    mat = mat.copy()
                    slot.material = mat
                owner[mat.name] = person.index
                mat.pass_index = person.index + 1
    return people


def owners(people: list) -> dict:
    """{Blender object name: person index} of every person's mesh objects."""
    return {ob.name: person.index for person in people for ob in person.objects}


def root(person, f: int) -> np.ndarray:
    """The point a following camera follows: the person's root, else the middle of its hips."""
    if hasattr(person, "root"):
        return np.asarray(person.root(f), float)
    kp = person.keypoints(f)
    hips = [mq.BODY_KEYPOINTS.index("l_hip"), mq.BODY_KEYPOINTS.index("r_hip")]
    return kp[hips].mean(axis=0)
