"""Body shapes for the mannequin: proportions beyond height and build.

Five numbers, each 1 (or 7.5 heads) for today's adult mannequin; the skeleton (rig.rest_positions)
and the meshes (mannequin.build) are both computed from them, so the keypoints stay exact on every
body. Standard library only (documented in docs/poses.md, "Body shapes"):

- head_ratio: the figure's height in head heights (floor to crown over chin to crown). Today's
  mannequin is 7.5 heads; a small child about 5, a heroic figure 8.5. The crown stays where it is
  for the height: a bigger head makes the body below it smaller, a smaller head makes it bigger.
- shoulder_width, hip_width: the distance between the shoulder joints (hip joints) and the chest's
  (pelvis's) width, as a factor of the default for that body.
- arm_length: shoulder to fingertips, as a factor; the arms hang from the same shoulders.
- leg_length: hip joints to the floor, as a factor; the torso takes up the difference, so the
  figure keeps its height.
"""
from __future__ import annotations

from ..errors import SpecError
from ..validate import check_choice, check_number, check_object, describe, subfield

DEFAULT_HEAD_RATIO = 7.5  # floor to crown (1.77 m) over chin to crown (0.236 m) of a 1.75 m mannequin

# name: (default, lo, hi, what it means)
PARAMS = {
    "head_ratio": (DEFAULT_HEAD_RATIO, 4.0, 9.0, "heads per height (floor to crown over chin to crown)"),
    "shoulder_width": (1.0, 0.75, 1.35, "shoulder breadth, as a factor of the default"),
    "hip_width": (1.0, 0.75, 1.35, "hip breadth, as a factor of the default"),
    "arm_length": (1.0, 0.85, 1.15, "shoulder to fingertips, as a factor of the default"),
    "leg_length": (1.0, 0.85, 1.15, "hip to floor, as a factor (the torso takes up the difference)"),
}
DEFAULTS = {k: v[0] for k, v in PARAMS.items()}

# Named proportions; "adult" is today's body. Only the keys that differ from the default are listed.
PRESETS = {
    "adult": {},
    "child": {"head_ratio": 5.0, "shoulder_width": 0.9, "hip_width": 0.9, "arm_length": 0.95, "leg_length": 0.9},
    "teen": {"head_ratio": 6.5, "shoulder_width": 0.95, "hip_width": 0.95, "leg_length": 0.97},
    "heroic": {"head_ratio": 8.5, "shoulder_width": 1.2, "hip_width": 0.95, "arm_length": 1.03, "leg_length": 1.06},
    "anime": {"head_ratio": 6.0, "shoulder_width": 0.88, "hip_width": 0.92, "arm_length": 0.97, "leg_length": 1.12},
}
PRESET_NOTES = {
    "adult": "the default body (every mannequin before body shapes): 7.5 heads",
    "child": "a young child (with a low height, 1.2 m): 5 heads, shorter legs, narrower shoulders and hips",
    "teen": "6.5 heads, slightly narrower",
    "heroic": "comic-book hero: 8.5 heads, broad shoulders, long legs",
    "anime": "stylised: a large head (6 heads), narrow shoulders, long legs",
}


def resolve(shape: dict | None) -> dict:
    """Every parameter's value: a normalized shape (or None, the default body) over the defaults."""
    return {**DEFAULTS, **(shape or {})}


def normalize_shape(raw, field: str) -> dict | None:
    """A body shape as the spec stores it: every parameter's number, or None for the default body
    (so a spec without a shape, or with the adult shape, keeps its batch id). raw: None, a preset
    name, or an object {"preset": name, <parameter>: number, ...} whose numbers override the
    preset's (the preset defaults to "adult"). Raises SpecError naming the field."""
    if raw is None:
        return None
    if isinstance(raw, str):
        check_choice(raw, field, tuple(PRESETS))
        raw = {"preset": raw}
    if not isinstance(raw, dict):
        raise SpecError(field, f"got {describe(raw)}",
                        "a preset name (" + ", ".join(PRESETS) + ') or an object {"preset", ' + ", ".join(PARAMS) + "}")
    check_object(raw, field, ("preset", *PARAMS))
    preset = check_choice(raw.get("preset", "adult"), subfield(field, "preset"), tuple(PRESETS))
    values = resolve(PRESETS[preset])
    for key, (_, lo, hi, _) in PARAMS.items():
        if key in raw:
            values[key] = check_number(raw[key], subfield(field, key), lo, hi)
    return None if values == DEFAULTS else values


def shape_markdown() -> str:
    """The parameters and presets as markdown tables (docs/poses.md, "Body shapes")."""
    rows = ["| key | default | range | meaning |", "|---|---|---|---|"]
    rows += [f"| `{k}` | {d:g} | {lo:g}–{hi:g} | {what} |" for k, (d, lo, hi, what) in PARAMS.items()]
    rows += ["", "| preset | " + " | ".join(f"`{k}`" for k in PARAMS) + " | what |", "|---|" + "---|" * len(PARAMS) + "---|"]
    for name, over in PRESETS.items():
        vals = resolve(over)
        rows.append(f"| `{name}` | " + " | ".join(f"{vals[k]:g}" for k in PARAMS) + f" | {PRESET_NOTES[name]} |")
    return "\n".join(rows)


WIDGET_KEYS = ("proportions", *PARAMS)  # the Mannequin node's widgets after `build`, in order


def from_widgets(proportions: str = "adult", head_ratio: float = 0.0, shoulder_width: float = 0.0,
                 hip_width: float = 0.0, arm_length: float = 0.0, leg_length: float = 0.0) -> dict | None:
    """The Mannequin node's body-shape widgets as a normalized shape (None = the default body):
    proportions is a preset name; each number overrides the preset's, 0 keeps the preset's. A
    wrong value raises SpecError naming its widget."""
    numbers = dict(head_ratio=head_ratio, shoulder_width=shoulder_width, hip_width=hip_width,
                   arm_length=arm_length, leg_length=leg_length)
    raw = {"preset": proportions, **{k: v for k, v in numbers.items() if v != 0}}
    try:
        return normalize_shape(raw, "")
    except SpecError as e:
        if e.field == "preset":
            raise SpecError("proportions", e.message, e.allowed) from None
        raise
