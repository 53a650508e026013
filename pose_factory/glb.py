"""glTF binary (GLB, and VRM, which is a GLB) container: its JSON chunk and its BIN chunk, per the
glTF 2.0 specification ("Binary glTF Layout"): a 12-byte header (magic "glTF", version 2, total
length), then chunks of (length, type, data), the first JSON (padded with spaces to 4 bytes), an
optional second BIN (padded with zeros). Pure Python: the core reads a VRM's humanoid table with it,
blender_scripts/make_rig.py writes one.

    read(data: bytes) -> (json dict, bin bytes)      ValueError naming what is wrong
    write(doc: dict, binary: bytes) -> bytes
"""
from __future__ import annotations

import json
import struct

MAGIC = b"glTF"
JSON_CHUNK = b"JSON"
BIN_CHUNK = b"BIN\0"


def read(data: bytes) -> tuple[dict, bytes]:
    """(JSON chunk as a dict, BIN chunk or b"") of GLB bytes; a ValueError says what is wrong."""
    if len(data) < 20:
        raise ValueError(f"not a glTF binary (GLB) file: {len(data)} bytes, shorter than its header")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != MAGIC:
        raise ValueError(f"not a glTF binary (GLB) file: it starts with {magic!r}, not b'glTF'")
    if version != 2:
        raise ValueError(f"a GLB of version {version}; only glTF 2.0 is read")
    if length > len(data):
        raise ValueError(f"a truncated GLB file: its header says {length} bytes, the file has {len(data)}")
    n, kind = struct.unpack_from("<I4s", data, 12)
    if kind != JSON_CHUNK or 20 + n > length:
        raise ValueError("a malformed GLB file: its first chunk is not a whole JSON chunk")
    try:
        doc = json.loads(data[20:20 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"a malformed GLB file: its JSON chunk does not parse ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError("a malformed GLB file: its JSON chunk is not an object")
    binary = b""
    at = 20 + n
    if at + 8 <= length:
        m, kind = struct.unpack_from("<I4s", data, at)
        if kind == BIN_CHUNK:
            if at + 8 + m > length:
                raise ValueError("a truncated GLB file: its BIN chunk runs past the end")
            binary = bytes(data[at + 8:at + 8 + m])
    return doc, binary


def write(doc: dict, binary: bytes = b"") -> bytes:
    """GLB bytes of a JSON document and an optional BIN chunk (each padded as the spec asks)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary = bytes(binary) + b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<I4s", len(text), JSON_CHUNK) + text
    if binary:
        chunks += struct.pack("<I4s", len(binary), BIN_CHUNK) + binary
    return struct.pack("<4sII", MAGIC, 2, 12 + len(chunks)) + chunks
