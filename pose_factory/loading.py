"""The loaders' core (pure numpy; OpenCV lazily): which (view, frame) entries a selection names,
fetching them through the local cache, and decoding each pass into image stacks.

    entries = select_entries(manifest, views="0-3", frames="all", order="view_major")
    manifest, folder = fetch_batch(settings, project, batch_id, names=("openpose", "keypoints"))
    pose = load_pose(folder, manifest, entries, hands=True, face=False, occluded="depth")
    maps = load_depth_normal(folder, manifest, entries, depth_range="image",
                             normal_convention="opengl", parts="hands, head")

Image stacks come back as uint8 [B, H, W, 3] (``as_float`` gives float32 in 0..1, what ComfyUI's
IMAGE holds), masks as float32 [B, H, W] in {0, 1}. A pass the batch was rendered without comes
back as ``None``; the nodes turn that into black images and say so in the log.
"""
from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .storage import index
from .errors import ManifestError, SpecError, StorageError, echo
from .parsing import loads_json
from .spec import MAX_SUBJECTS
from .mesh.props import labels as prop_labels
from .render.mannequin import PART_GROUPS, PART_LABEL, PARTS
from .render.passes import NORMAL_CONVENTIONS, NORMAL_DIRS, depth_to_u8

ORDERS = ("view_major", "frame_major")
DEPTH_RANGES = ("batch", "image")
SELECTION_HELP = "'all', a list like '0,2', a range like '0-3', or both ('0,2-3')"
POSE_PASSES = ("openpose", "keypoints", "shaded")
# what a loader needs of a batch (the index's "passes" summary): every pass of "all", one of "any"
LOADER_NEEDS = {
    "pose": {"all": ("keypoints",), "any": ()},
    "depth_normal": {"all": (), "any": ("depth", "depth16", "normal", "normal_opengl", "normal_directx", "seg")},
}
AS_RENDERED = "as rendered"  # a loader's occluded: what the request asked for (the manifest's spec)
MAX_PEOPLE = MAX_SUBJECTS  # a loader's person widget offers "all" and 0..7
PERSONS = ("all",) + tuple(str(k) for k in range(MAX_PEOPLE))
_TOKEN = re.compile(r"(\d{1,9})(?:\s*-\s*(\d{1,9}))?")  # no index has more digits
_DECODE_WORKERS = min(8, os.cpu_count() or 1)
MAX_MESH_BYTES = 1 << 30  # a mesh of 5 million faces as OBJ text is about 400 MB
MAX_JSON_BYTES = 1 << 20  # a keypoints file: ~8 KB with hands and face


class SelectionError(SpecError):
    """A loader selection (views, frames, order, parts...) is wrong; names the field and what is allowed."""


def loadable(passes, loader: str) -> bool:
    """Whether a batch with these passes (its files' folders: keypoints, depth, normal...) gives
    the loader ("pose" or "depth_normal", LOADER_NEEDS) what it loads: a mesh batch has no
    keypoints, a batch rendered without depth, normal and seg has nothing for the depth loader."""
    need = LOADER_NEEDS[loader]
    have = set(passes or ())
    return all(p in have for p in need["all"]) and (not need["any"] or any(p in have for p in need["any"]))


# --- selection ---------------------------------------------------------------------------------
def parse_indices(text, n: int, field: str) -> list[int]:
    """'all' (or empty) -> 0..n-1; '0,2' -> [0, 2]; '0-3' -> [0, 1, 2, 3]; '3-1' -> [3, 2, 1].
    Order as written, repeats dropped. SelectionError names the field and the batch's range."""
    allowed = f"0..{n - 1} for this batch ({SELECTION_HELP})" if n > 0 else "nothing: the batch is empty"
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        text = str(int(text))
    if not isinstance(text, str):
        raise SelectionError(field, f"got {echo(text)}", allowed)
    s = text.strip().lower()
    if s in ("", "all", "*"):
        return list(range(n))
    out = []
    for token in s.split(","):
        token = token.strip()
        m = _TOKEN.fullmatch(token)
        if not m:
            raise SelectionError(field, f"got {echo(token)}" if token else f"an empty item in {echo(text)}", allowed)
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        for v in (a, b):
            if v >= n:
                raise SelectionError(field, f"got {str(v)!r}", allowed)
        step = 1 if b >= a else -1
        for v in range(a, b + step, step):
            if v not in out:
                out.append(v)
    return out


def select_entries(manifest: dict, views="all", frames="all", order="view_major") -> list[dict]:
    """The manifest's entries for the selected views and frames: view_major = every frame of the
    first view, then the next view; frame_major = every view of the first frame, then the next."""
    if order not in ORDERS:
        raise SelectionError("order", f"got {order!r}", "one of " + ", ".join(ORDERS))
    v_sel = parse_indices(views, len(manifest["views"]), "views")
    f_sel = parse_indices(frames, int(manifest["frames"]), "frames")
    by_key = {(int(e["view"]), int(e["frame"])): e for e in manifest["entries"]}
    pairs = ([(v, f) for v in v_sel for f in f_sel] if order == "view_major"
             else [(v, f) for f in f_sel for v in v_sel])
    missing = [p for p in pairs if p not in by_key]
    if missing:
        v, f = missing[0]
        raise SelectionError("views", f"view {v} frame {f} is not in the batch's manifest",
                             "the (view, frame) pairs the manifest lists")
    return [by_key[p] for p in pairs]


def batch_passes(manifest: dict) -> set:
    return {name for e in manifest["entries"] for name in e["files"]}


def parse_parts(text) -> list[int]:
    """'hands, head' -> the part label ids (1..17) of those groups or part names, sorted.
    Groups: PART_GROUPS (head, face, neck, torso, arms, hands, legs, feet) plus 'all' (the body) and
    'props' (every prop, labels 32..47); part names: mannequin.PARTS (hand_l, thigh_r, ...) and
    prop0..prop15. Empty -> []."""
    if not isinstance(text, str):
        raise SelectionError("parts", f"got {text!r}", "a comma-separated list of part groups or part names")
    ids = set()
    for token in re.split(r"[,\s]+", text.strip().lower()):
        if not token:
            continue
        if token == "all":
            ids.update(PART_LABEL.values())
        elif token == "props":  # every prop of a pose scene (pose_factory/mesh/props.py)
            ids.update(prop_labels())
        elif re.fullmatch(r"prop\d+", token) and int(token[4:]) < len(prop_labels()):
            ids.add(prop_labels()[int(token[4:])])
        elif token in PART_GROUPS:
            ids.update(PART_LABEL[p] for p in PART_GROUPS[token])
        elif token in PART_LABEL:
            ids.add(PART_LABEL[token])
        else:
            raise SelectionError("parts", f"got {token!r}",
                                 "groups " + ", ".join(["all", *PART_GROUPS, "props"]) + "; or parts "
                                 + ", ".join(PARTS) + f"; or prop0..prop{len(prop_labels()) - 1}")
    return sorted(ids)


def batch_people(manifest: dict) -> int:
    """How many people a batch shows: its spec's subjects (every batch made before several people
    has one)."""
    subjects = manifest.get("spec", {}).get("subjects")
    return len(subjects) if isinstance(subjects, list) and subjects else 1


def parse_person(person, manifest: dict) -> int | None:
    """A loader's person widget: None for "all", else the person's index k (subjects[k] of the
    batch's spec). SelectionError names how many people the batch has."""
    n = batch_people(manifest)
    text = str(person).strip().lower() if isinstance(person, (str, int)) and not isinstance(person, bool) else None
    if text in ("all", ""):
        return None
    allowed = f"all, or 0..{n - 1}: the batch has {n} {'person' if n == 1 else 'people'}"
    if text is None or not text.isdigit():
        raise SelectionError("person", f"got {echo(person)}", allowed)
    k = int(text)
    if k >= n:
        raise SelectionError("person", f"got {k}", allowed)
    return k


def person_keypoints(frame: dict, k: int) -> dict:
    """One POSE_KEYPOINT frame with only person k in its people (an empty list when the frame has
    no such entry: a person out of the frame still has one, so that means no such person)."""
    people = frame.get("people") or []
    return dict(frame, people=[people[k]] if k < len(people) else [])


# --- fetching --------------------------------------------------------------------------------
def check_manifest_limits(manifest: dict, limits: dict | None = None) -> dict:
    """manifest when its sizes are within what a spec may ask (spec.MAX_SIZE pixels a side,
    MAX_VIEWS views, MAX_POSES frames), its files' sizes within what such images can need
    (_file_bytes_cap) and, given the settings' ``limits``, within its caps on images and
    megapixels; else ManifestError naming the field, the manifest's value and the cap. Checked
    before anything is downloaded or allocated from the manifest's sizes."""
    from .spec import MAX_POSES, MAX_SIZE, MAX_VIEWS

    for field, value, cap in (("width", manifest["width"], MAX_SIZE), ("height", manifest["height"], MAX_SIZE),
                              ("views", len(manifest["views"]), MAX_VIEWS), ("frames", manifest["frames"], MAX_POSES)):
        if value > cap:
            raise ManifestError(field, f"got {value}, allowed: at most {cap} (the JobSpec's limit)")
    pixels = manifest["width"] * manifest["height"]
    for i, e in enumerate(manifest["entries"]):
        for name, info in e["files"].items():
            cap = _file_bytes_cap(info["key"], pixels)
            if info["size"] > cap:
                raise ManifestError(f"entries[{i}].files.{name}.size",
                                    f"got {info['size']} bytes, allowed: at most {cap} for a "
                                    f"{manifest['width']}x{manifest['height']} batch")
    if limits is not None:
        images = len(manifest["views"]) * manifest["frames"]
        mp = images * pixels / 1e6
        for key, value, unit in (("max_images", images, "images"), ("max_megapixels", mp, "megapixels")):
            if value > limits[key]:
                raise ManifestError("views", f"the batch holds {value:g} {unit}, allowed: at most "
                                             f"{limits[key]:g} (limits.{key} in the config)")
    return manifest


def _file_bytes_cap(key: str, pixels: int) -> int:
    """The most bytes a batch file may have: a PNG or EXR no more than its pixels uncompressed
    (16-bit RGBA; an EXR up to 16 float channels) plus 1 MB; a keypoints JSON 1 MB. A file over
    it is refused before it is downloaded. A mesh file (a reconstruct or mesh-pass batch's) MAX_MESH_BYTES."""
    if key.rsplit(".", 1)[-1] in ("glb", "obj", "fbx", "npz"):
        return MAX_MESH_BYTES
    per_pixel = {"png": 8, "exr": 64}.get(key.rsplit(".", 1)[-1], 0)
    return per_pixel * pixels + MAX_JSON_BYTES


def fetch_batch(settings: dict, project: str, batch_id: str, names, progress=None, storage=None):
    """(manifest, folder) with the named passes (those the batch has) of every entry in the local
    cache. A batch already cached whole for these passes — and not re-rendered since, by the
    index's created_at — is served from the cache without touching storage; otherwise the missing
    files are downloaded (parallel, verified). The manifest's sizes are checked against the
    limits (check_manifest_limits) before anything is downloaded. The batch is recorded in the
    local index."""
    from .storage.download import cached_batch, download_batch
    from .storage import batch_prefix, read_manifest

    batch_prefix(project, batch_id)  # a bad project or batch id is refused before any path is made of it
    cache_root = settings["storage"]["cache_root"]
    limits = settings.get("limits")
    known = index.load(cache_root).get(project, {}).get(batch_id)
    hit = cached_batch(cache_root, project, batch_id, names, created_at=(known or {}).get("created_at"))
    if hit is not None:
        check_manifest_limits(hit[0], limits)
        if known is None:
            index.record(cache_root, hit[0])
        return hit
    if storage is None:
        from .settings import make_storage

        storage = make_storage(settings)
    manifest = read_manifest(storage, project, batch_id)
    if manifest is None:
        from .errors import StorageError

        raise StorageError(f"batch {project}/{batch_id} has no manifest in storage: unknown, or not "
                           "complete yet (a batch without a manifest is never loaded)")
    check_manifest_limits(manifest, limits)
    have = batch_passes(manifest)
    wanted = [n for n in names if n in have]
    manifest, folder = download_batch(storage, project, batch_id, cache_root, names=wanted, progress=progress,
                                      manifest=manifest)
    index.record(cache_root, manifest)
    return manifest, folder


# --- decoding --------------------------------------------------------------------------------
def _cv2():
    from .imageio import _cv2 as get

    return get()


class ImageHeaderError(StorageError):
    """A batch image whose PNG header does not match its manifest (size or format): refused
    before it is decoded."""


def check_png_header(head: bytes, where: str, manifest: dict, name: str, mode: str = "rgb") -> None:
    """Refuses a pass image whose PNG header (the first imageio.PNG_HEADER_BYTES of the file)
    does not match the manifest's width and height, or is not the pass's format: 8-bit
    gray/RGB/RGBA for colour passes (mode 'rgb'), 8-bit gray for masks and labels, 16-bit gray for
    depth16 (mode 'gray'). ImageHeaderError names the file, its size and the manifest's;
    StorageError when it is no PNG at all. Nothing is decoded or allocated from the file's sizes."""
    from .imageio import describe_png, png_header

    w, h = manifest["width"], manifest["height"]
    try:
        fw, fh, depth, colour = png_header(head, where)
    except OSError as e:  # not a picture at all: unreadable, as a corrupt file is
        raise StorageError(f"{name} image {e}; the manifest says a {w}x{h} PNG") from None
    if (fw, fh) != (w, h):
        raise ImageHeaderError(f"{name} image {where} is {fw}x{fh} pixels ({describe_png(depth, colour)}), the "
                               f"manifest says {w}x{h}: refused before decoding")
    want_depth, colours = ((16 if name == "depth16" else 8), (0,)) if mode == "gray" else (8, (0, 2, 6))
    if depth != want_depth or colour not in colours:
        allowed = " or ".join(describe_png(want_depth, c) for c in colours)
        raise ImageHeaderError(f"{name} image {where} is {describe_png(depth, colour)}, allowed: {allowed}")


def check_png(path, manifest: dict, name: str, mode: str = "rgb") -> None:
    """check_png_header of a file: reads its first bytes only."""
    from .imageio import PNG_HEADER_BYTES

    with open(path, "rb") as fh:
        check_png_header(fh.read(PNG_HEADER_BYTES), os.fspath(path), manifest, name, mode)


def _read(path, flags):
    cv2 = _cv2()
    img = cv2.imread(os.fspath(path), flags)
    if img is None:
        raise OSError(f"could not read image {path}")
    return img


def _decode(folder, manifest, entries, name, mode):
    """Stack of the pass's images for the entries: mode 'rgb' -> uint8 [B,H,W,3], 'gray' ->
    [B,H,W] at the file's bit depth. None when an entry lacks the pass. Every file's header is
    checked against the manifest (check_png) before any is decoded."""
    if any(name not in e["files"] for e in entries):
        return None
    cv2 = _cv2()
    paths = [os.path.join(folder, e["files"][name]["key"]) for e in entries]
    for path in paths:
        check_png(path, manifest, name, mode)
    first = _read(paths[0], cv2.IMREAD_UNCHANGED)
    out = np.empty((len(paths),) + first.shape[:2] + ((3,) if mode == "rgb" else ()),
                   np.uint8 if mode == "rgb" else first.dtype)

    def one(i):
        img = first if i == 0 else _read(paths[i], cv2.IMREAD_UNCHANGED)
        if img.shape[:2] != out.shape[1:3]:
            raise ValueError(f"{paths[i]}: size {img.shape[1]}x{img.shape[0]} differs from the batch's "
                             f"{out.shape[2]}x{out.shape[1]}")
        if mode == "rgb":
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB, dst=out[i])
        else:
            out[i] = img if img.ndim == 2 else img[:, :, 0]

    _map(one, range(len(paths)))
    return out


def _map(fn, items):
    items = list(items)
    if len(items) <= 1:
        for i in items:
            fn(i)
        return
    with ThreadPoolExecutor(max_workers=min(_DECODE_WORKERS, len(items))) as pool:
        for f in [pool.submit(fn, i) for i in items]:
            f.result()


def as_float(u8: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in 0..1."""
    out = u8.astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


def read_keypoints(folder, entries, manifest: dict) -> list:
    """The POSE_KEYPOINT frames (one dict per entry) of the selection, as stored; each checked with
    openpose.validate_pose_keypoint and its canvas against the manifest's size (ManifestError
    naming the file and what is wrong)."""
    from .render.openpose import validate_pose_keypoint

    frames = []
    for e in entries:
        if "keypoints" not in e["files"]:
            raise SelectionError("keypoints", "the batch has no keypoints pass", "a batch rendered with keypoints")
        path = os.path.join(folder, e["files"]["keypoints"]["key"])
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_JSON_BYTES + 1)
            if len(data) > MAX_JSON_BYTES:
                raise ValueError(f"over {MAX_JSON_BYTES} bytes")
            (frame,) = validate_pose_keypoint(loads_json(data, ValueError))
        except (ValueError, RecursionError) as err:  # JSON, UTF-8 and POSE_KEYPOINT errors
            raise ManifestError(path, f"not a valid POSE_KEYPOINT frame ({str(err)[:200]})") from None
        canvas = (frame["canvas_width"], frame["canvas_height"])
        if canvas != (manifest["width"], manifest["height"]):
            raise ManifestError(path, f"canvas {canvas[0]}x{canvas[1]}, allowed: the batch's "
                                      f"{manifest['width']}x{manifest['height']}")
        frames.append(frame)
    return frames


def _openpose_flags(manifest) -> dict:
    spec = manifest.get("spec", {})
    op = spec.get("render", {}).get("openpose") or spec.get("openpose", {})  # a pose batch's, an extract batch's
    return {"hands": bool(op.get("hands", True)), "face": bool(op.get("face", True)),
            "sdxl_sticks": bool(op.get("sdxl_sticks", False)), "occluded": op.get("occluded", "hide"),
            "feet": bool(op.get("feet", False))}


def load_pose(folder, manifest, entries, hands: bool = True, face: bool = True, occluded: str = AS_RENDERED,
              person="all", feet: bool = False, hide: str = "") -> dict:
    """{"openpose": uint8 [B,H,W,3], "keypoints": [frame, ...], "shaded": uint8 [B,H,W,3] or None}.
    The stored OpenPose images when hands/face/occluded match how the batch drew them; otherwise
    redrawn from the keypoints with openpose.draw_pose (same sticks): no re-render. occluded
    AS_RENDERED ("as rendered"): what the batch's request asked for (its manifest's spec).
    person "all", or k: the keypoints of person k only (subjects[k]) and its skeleton alone, redrawn
    (a batch of one person: person 0 is what was rendered). feet: the foot points drawn (core's
    whole-body drawer's way); a choice other than the batch's redraws (a batch made before feet has
    no foot points: the same image). hide: joint names and groups (render.hide.parse_hide;
    "1:left_hand" for person 1 only) written as not found in the keypoints, their true place in our
    field, and left out of the skeleton, redrawn; empty: as stored."""
    from .render.hide import hide_frames, parse_hide
    from .render.openpose import OCCLUDED_MODES, draw_pose

    if occluded != AS_RENDERED and occluded not in OCCLUDED_MODES:
        raise SelectionError("occluded", f"got {occluded!r}", "one of " + ", ".join((AS_RENDERED,) + OCCLUDED_MODES))
    k = parse_person(person, manifest)
    hidden = parse_hide(hide)  # refused by name before anything is read
    keypoints = read_keypoints(folder, entries, manifest)
    if hidden:  # person k's "k:" names count the batch's people, so before one is picked
        keypoints = hide_frames(keypoints, hide)
    alone = k is not None and batch_people(manifest) > 1
    if alone:
        keypoints = [person_keypoints(frame, k) for frame in keypoints]
    drawn = _openpose_flags(manifest)
    if occluded == AS_RENDERED:
        occluded = drawn["occluded"]
    openpose = None
    if not alone and not hidden and (hands, face, occluded, feet) == (drawn["hands"], drawn["face"], drawn["occluded"],
                                                                      drawn["feet"]):
        openpose = _decode(folder, manifest, entries, "openpose", "rgb")
    if openpose is None:
        openpose = np.stack([draw_pose(k, hands=hands, face=face, sdxl_sticks=drawn["sdxl_sticks"], occluded=occluded,
                                       feet=feet)
                             for k in keypoints])
    return {"openpose": openpose, "keypoints": keypoints, "shaded": _decode(folder, manifest, entries, "shaded", "rgb")}


def depth_normal_passes(depth_range: str, normal_convention: str) -> tuple:
    if depth_range not in DEPTH_RANGES:
        raise SelectionError("depth_range", f"got {depth_range!r}", "one of " + ", ".join(DEPTH_RANGES))
    if normal_convention not in NORMAL_CONVENTIONS:
        raise SelectionError("normal_convention", f"got {normal_convention!r}",
                             "one of " + ", ".join(NORMAL_CONVENTIONS))
    depth = ("depth",) if depth_range == "batch" else ("depth16",)
    return depth + (NORMAL_DIRS[normal_convention], "seg", "mask", "parts", "instance")


def image_depth(depth_mm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ControlNet depth of one image re-normalised over its own subject: uint8 [H,W,3]."""
    mask = mask & (depth_mm > 0)
    if not mask.any():
        return np.zeros(depth_mm.shape + (3,), np.uint8)
    d = depth_mm.astype(np.float32)
    sub = d[mask]
    return depth_to_u8(d, mask, float(sub.min()), float(sub.max()))


def person_masks(folder, manifest, entries, k: int) -> np.ndarray | None:
    """bool [B,H,W]: the pixels of person k, from the batch's instance pass (k + 1 there; written
    when a batch shows 2 or more people); None for a batch of one person (its mask is the
    person's). StorageError when a batch of several people lacks the pass."""
    if batch_people(manifest) < 2:
        return None
    ids = _decode(folder, manifest, entries, "instance", "gray")
    if ids is None:
        raise StorageError(f"batch {manifest.get('batch_id')} shows {batch_people(manifest)} people but has no "
                           "instance pass (render it with seg on)")
    return ids == k + 1


def load_depth_normal(folder, manifest, entries, depth_range: str = "batch", normal_convention: str = "controlnet",
                      parts="hands", person="all") -> dict:
    """{"depth", "normal", "seg": uint8 [B,H,W,3] or None; "subject", "parts": float32 [B,H,W] or None}.
    depth_range 'batch': the depth images as stored (the spec's range: one per batch by default);
    'image': from depth16 and the mask, each image over its own near..far. parts: the groups or
    part names (parse_parts) whose labels make the parts mask. person "all", or k: the subject
    mask and the parts mask of person k only (the instance pass; a batch of one person: person 0
    is its mask)."""
    names = depth_normal_passes(depth_range, normal_convention)
    label_ids = parse_parts(parts) if isinstance(parts, str) else sorted(int(p) for p in parts)
    k = parse_person(person, manifest)
    own = None if k is None else person_masks(folder, manifest, entries, k)
    out = {}
    mask_u8 = _decode(folder, manifest, entries, "mask", "gray")
    out["subject"] = None if mask_u8 is None else (mask_u8 > 127).astype(np.float32)
    if own is not None and out["subject"] is not None:
        out["subject"] *= own
    if depth_range == "batch":
        out["depth"] = _decode(folder, manifest, entries, "depth", "rgb")
    else:
        mm = _decode(folder, manifest, entries, "depth16", "gray")
        if mm is None:
            out["depth"] = None
        else:
            masks = mm > 0 if mask_u8 is None else (mask_u8 > 127)
            out["depth"] = np.stack([image_depth(mm[i], masks[i]) for i in range(len(mm))])
    out["normal"] = _decode(folder, manifest, entries, names[1], "rgb")
    out["seg"] = _decode(folder, manifest, entries, "seg", "rgb")
    labels = _decode(folder, manifest, entries, "parts", "gray")
    if labels is None:
        out["parts"] = None
    else:
        lut = np.zeros(256, np.float32)
        lut[label_ids] = 1.0
        out["parts"] = lut[labels]
        if own is not None:
            out["parts"] *= own
    return out


# --- previews --------------------------------------------------------------------------------
def overlay(top: np.ndarray, under: np.ndarray | None) -> np.ndarray:
    """Non-black pixels of ``top`` over ``under`` (uint8 stacks of one shape)."""
    if under is None:
        return top
    drawn = top.any(axis=-1, keepdims=True)
    return np.where(drawn, top, under)


def square_cols(n: int, w: int, h: int) -> int:
    """The number of columns that tiles n images of w x h into the grid nearest a square (a node's
    preview area is about square: a wide grid is a thin strip in it)."""
    best = min(range(1, max(1, n) + 1), key=lambda c: (abs(math.log((c * w) / (math.ceil(n / c) * h))), c))
    return best


def grid(images: np.ndarray, max_side: int = 1024, cols: int | None = None, gap: int = 2) -> np.ndarray:
    """One uint8 image tiling the stack [B,H,W,3] (or [B,H,W]) row by row, each tile shrunk so
    the whole grid fits max_side; gaps black."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    b, h, w = images.shape[:3]
    if b == 0:
        raise ValueError("grid: no images")
    cols = cols or (b if b <= 4 else math.ceil(math.sqrt(b)))
    cols = max(1, min(cols, b))
    rows = math.ceil(b / cols)
    scale = min(1.0, (max_side - gap * (cols - 1)) / (cols * w), (max_side - gap * (rows - 1)) / (rows * h))
    tw, th = max(1, int(w * scale)), max(1, int(h * scale))
    if (tw, th) != (w, h):
        cv2 = _cv2()
        images = np.stack([cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA) for im in images])
    out = np.zeros((rows * th + gap * (rows - 1), cols * tw + gap * (cols - 1), 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (th + gap):r * (th + gap) + th, c * (tw + gap):c * (tw + gap) + tw] = im
    return out
