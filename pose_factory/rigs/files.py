"""Checks of an untrusted rig file's bytes before anything reads it (size, and that its format is
the one its name says), and the JSON chunk of a GLB/VRM read in pure Python (VRM's humanoid table).

Formats: FBX (binary 'Kaydara FBX Binary' or ASCII FBX), GLB and VRM (a binary glTF 2.0: the
'glTF' header then a JSON chunk), glTF (a self-contained .gltf JSON: every buffer and image a
data: URI, since nothing beside the file is uploaded with it) and .blend (the 'BLENDER' header, or
a zstd or gzip compressed .blend). A file is at most MAX_RIG_BYTES.
"""
from __future__ import annotations

import gzip
import io
import json

from .. import glb
from ..errors import SpecError, echo

RIG_FORMATS = ("fbx", "glb", "gltf", "vrm", "blend")
MAX_RIG_BYTES = 200 << 20  # 200 MiB: one rig file (a 30k-triangle character with textures is 5 to 50 MB)
_ZSTD = b"\x28\xb5\x2f\xfd"
_GZIP = b"\x1f\x8b"
WHAT = {"fbx": "an FBX file (binary 'Kaydara FBX Binary' or ASCII)", "glb": "a binary glTF 2.0 file ('glTF' header, JSON chunk)",
        "vrm": "a VRM file (a binary glTF 2.0 file with the VRM or VRMC_vrm extension)",
        "gltf": "a self-contained glTF 2.0 JSON file (buffers and images as data: URIs)",
        "blend": "a Blender .blend file ('BLENDER' header, or zstd/gzip compressed)"}


def check_size(n: int, where: str) -> None:
    if n > MAX_RIG_BYTES:
        raise SpecError(where, f"a file of {n} bytes", f"a rig file of at most {MAX_RIG_BYTES} bytes (200 MiB)")


def glb_json(data: bytes, where: str = "rig") -> dict:
    """The JSON chunk of a binary glTF (GLB or VRM, read by pose_factory.glb), else SpecError."""
    try:
        return glb.read(data)[0]
    except ValueError as e:
        raise SpecError(where, str(e), WHAT["glb"]) from None


def _gltf_json(data: bytes, where: str) -> dict:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise SpecError(where, f"not a glTF JSON file (its first bytes are {echo(data[:8])})", WHAT["gltf"]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("asset"), dict):
        raise SpecError(where, "a JSON file without a glTF 'asset'", WHAT["gltf"])
    for kind in ("buffers", "images"):
        for i, item in enumerate(doc.get(kind) or []):
            uri = item.get("uri") if isinstance(item, dict) else None
            if uri is not None and not (isinstance(uri, str) and uri.startswith("data:")):
                raise SpecError(where, f"a glTF whose {kind}[{i}] is the outside file {echo(uri)}",
                                WHAT["gltf"] + "; export it as .glb, which holds everything")
    return doc


def _blend_header(data: bytes) -> bytes:
    if data[:4] == _ZSTD:
        try:
            import zstandard
        except ImportError:  # no reader here: the zstd frame's magic is all we can check
            return b"BLENDER"
        try:
            return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read(7)
        except zstandard.ZstdError:
            return b""
    if data[:2] == _GZIP:
        try:
            return gzip.GzipFile(fileobj=io.BytesIO(data)).read(7)
        except (OSError, EOFError):
            return b""
    return data[:7]


def check_bytes(data: bytes, fmt: str, where: str = "rig") -> dict | None:
    """Checks a rig file's size and that its bytes are the format its name says; returns the
    glTF JSON of a GLB, VRM or glTF file (else None)."""
    check_size(len(data), where)
    if fmt not in RIG_FORMATS:
        raise SpecError(where, f"a .{fmt} file", "one of " + ", ".join("." + f for f in RIG_FORMATS))
    head = data[:64]
    if fmt in ("glb", "vrm"):
        doc = glb_json(data, where)
        if fmt == "vrm" and not ({"VRM", "VRMC_vrm"} & set(doc.get("extensions") or {})):
            raise SpecError(where, "a binary glTF without a VRM humanoid (no VRM or VRMC_vrm extension)", WHAT["vrm"])
        return doc
    if fmt == "gltf":
        return _gltf_json(data, where)
    if fmt == "fbx":
        ascii_fbx = b"\0" not in data[:4096] and (data.lstrip()[:5] == b"; FBX" or b"FBXHeaderExtension" in data[:65536])
        if not (data[:18] == b"Kaydara FBX Binary" or ascii_fbx):
            raise SpecError(where, f"not an FBX file (its first bytes are {echo(head[:18])})", WHAT["fbx"])
        return None
    if _blend_header(data) != b"BLENDER":
        raise SpecError(where, f"not a .blend file (its first bytes are {echo(head[:8])})", WHAT["blend"])
    return None
