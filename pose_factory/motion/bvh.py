"""Reads a BVH file's structure and checks it before Blender sees it: the hierarchy, the channel
counts, every number of the motion (finite), the frame count, the names and the size. A malformed
clip gets a SpecError naming the line (and the joint or channel) and what is allowed; Blender's own
importer, which raises bare Python errors on the same files, only ever reads a checked clip.
Standard library only."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..errors import SpecError, echo

MAX_BYTES = 64 * 1024 * 1024  # a 64 MB BVH is hours of mocap
MAX_JOINTS = 512
MAX_FRAMES = 200_000
MAX_NAME = 63  # Blender's bone names hold 63 bytes
CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_NAME_RE = re.compile(r"[A-Za-z0-9_:.\-|]{1,63}")
NAME_RULE = "1 to 63 characters: letters, digits and _ : . - |"


@dataclass
class BvhJoint:
    name: str
    parent: int  # -1 for the root
    offset: tuple
    channels: tuple
    line: int


@dataclass
class BvhClip:
    joints: list = field(default_factory=list)
    frames: int = 0
    frame_time: float = 0.0
    motion_line: int = 0  # the line of the first frame

    @property
    def names(self) -> list:
        return [j.name for j in self.joints]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


def parse(text: str, source: str = "clip") -> BvhClip:
    """The clip's hierarchy and frame count; every motion value is checked (finite, the right
    count per line). SpecError(field=f"{source} line N", ...) on the first problem."""
    if len(text.encode("utf-8", "ignore")) > MAX_BYTES:
        raise SpecError(source, f"{len(text)} characters", f"a BVH file of at most {MAX_BYTES // 2**20} MB")
    lines = text.splitlines()
    pos = 0

    def fail(n, message, allowed=""):
        raise SpecError(f"{source} line {n}", message, allowed)

    def next_tokens():
        nonlocal pos
        while pos < len(lines):
            pos += 1
            toks = lines[pos - 1].split()
            if toks:
                return pos, toks
        fail(len(lines) + 1, "the file ends inside the HIERARCHY (truncated?)", "a complete BVH file")

    def number(tok, n, what):
        try:
            v = float(tok)
        except ValueError:
            fail(n, f"{what}: got {echo(tok, 40)}", "a number")
        if not math.isfinite(v):
            fail(n, f"{what}: got {echo(tok, 40)}", "a finite number (no NaN or infinity)")
        return v

    clip = BvhClip()
    n, toks = next_tokens()
    if toks[0] != "HIERARCHY":
        fail(n, f"got {echo(' '.join(toks), 40)}", "'HIERARCHY' as the first word of a BVH file")
    n, toks = next_tokens()
    if toks[0] != "ROOT" or len(toks) != 2:
        fail(n, f"got {echo(' '.join(toks), 40)}", "'ROOT <name>'")
    stack = []  # (joint index or None for an End Site)

    def brace_offset(what):
        """'{' then 'OFFSET x y z': the offset."""
        m, t = next_tokens()
        if t != ["{"]:
            fail(m, f"got {echo(' '.join(t), 40)} after {what}", "'{'")
        m, t = next_tokens()
        if t[0] != "OFFSET" or len(t) != 4:
            fail(m, f"{what}: got {echo(' '.join(t), 40)}", "'OFFSET x y z'")
        return tuple(number(v, m, f"{what} OFFSET") for v in t[1:])

    def open_joint(name, n, parent):
        if not _NAME_RE.fullmatch(name):
            fail(n, f"joint name {echo(name, 70)}", NAME_RULE)
        if name in seen:
            fail(n, f"joint name {name!r} used twice", "unique joint names")
        if len(clip.joints) >= MAX_JOINTS:
            fail(n, f"more than {MAX_JOINTS} joints", f"at most {MAX_JOINTS} joints")
        seen.add(name)
        clip.joints.append(BvhJoint(name, parent, (0.0, 0.0, 0.0), (), n))
        clip.joints[-1].offset = brace_offset(f"joint {name!r}")
        m, t = next_tokens()
        if t[0] != "CHANNELS" or len(t) < 2:
            fail(m, f"joint {name!r}: got {echo(' '.join(t), 40)}", "'CHANNELS n <channel names>'")
        try:
            count = int(t[1])
        except ValueError:
            count = -1
        if count not in (3, 6) and not (count == 0 and parent >= 0):
            fail(m, f"joint {name!r}: CHANNELS {echo(t[1], 20)}", "3 (rotations) or 6 (positions and rotations)")
        chans = tuple(t[2:])
        if len(chans) != count:
            fail(m, f"joint {name!r}: CHANNELS {count} names {len(chans)} channels", f"exactly {count} channel names")
        for c in chans:
            if c not in CHANNELS:
                fail(m, f"joint {name!r}: unknown channel {echo(c, 30)}", ", ".join(CHANNELS))
        if len(set(chans)) != len(chans):
            fail(m, f"joint {name!r}: a channel named twice", "each channel once")
        if count and sum(c.endswith("rotation") for c in chans) != 3:
            fail(m, f"joint {name!r}: {sum(c.endswith('rotation') for c in chans)} rotation channels",
                 "Xrotation, Yrotation and Zrotation, each once")
        clip.joints[-1].channels = chans
        stack.append(len(clip.joints) - 1)

    seen: set = set()
    open_joint(toks[1], n, -1)
    while stack:
        n, toks = next_tokens()
        head = toks[0]
        if head == "JOINT" and len(toks) == 2:
            if stack[-1] is None:
                fail(n, "a JOINT inside an End Site", "End Site { OFFSET x y z }")
            open_joint(toks[1], n, stack[-1])
        elif head == "End" and toks[1:] == ["Site"]:
            brace_offset("End Site")
            stack.append(None)
        elif toks == ["}"]:
            stack.pop()
        else:
            fail(n, f"got {echo(' '.join(toks), 40)}", "JOINT <name>, End Site or '}'")
    n, toks = next_tokens()
    if toks != ["MOTION"]:
        fail(n, f"got {echo(' '.join(toks), 40)}", "'MOTION' after the hierarchy")
    n, toks = next_tokens()
    if toks[0] != "Frames:" or len(toks) != 2 or not toks[1].isdigit():
        fail(n, f"got {echo(' '.join(toks), 40)}", "'Frames: <count>'")
    clip.frames = int(toks[1])
    if not 1 <= clip.frames <= MAX_FRAMES:
        fail(n, f"Frames: {clip.frames}", f"1 to {MAX_FRAMES} frames")
    n, toks = next_tokens()
    if toks[:2] != ["Frame", "Time:"] or len(toks) != 3:
        fail(n, f"got {echo(' '.join(toks), 40)}", "'Frame Time: <seconds>'")
    clip.frame_time = number(toks[2], n, "Frame Time")
    if not 1e-4 <= clip.frame_time <= 10:
        fail(n, f"Frame Time {clip.frame_time:g}", "0.0001 to 10 seconds")
    # every channel of every frame: the name of the channel a bad value sits in
    names = [f"{j.name} {c}" for j in clip.joints for c in j.channels]
    clip.motion_line = pos + 1
    frames = 0
    for i in range(pos, len(lines)):
        toks = lines[i].split()
        if not toks:
            continue
        if frames == clip.frames:
            fail(i + 1, f"more frame lines than 'Frames: {clip.frames}'", f"exactly {clip.frames} frame lines")
        if len(toks) != len(names):
            fail(i + 1, f"frame {frames}: {len(toks)} values", f"{len(names)} values, one per channel of the hierarchy")
        for k, tok in enumerate(toks):
            number(tok, i + 1, f"frame {frames}, channel {k + 1} ({names[k]})")
        frames += 1
    if frames != clip.frames:
        fail(len(lines) + 1, f"{frames} frame lines, 'Frames: {clip.frames}' (truncated?)",
             f"exactly {clip.frames} frame lines")
    return clip
