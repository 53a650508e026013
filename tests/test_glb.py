"""The GLB container (pose_factory/glb.py), against the layout glTF 2.0 specifies ("Binary glTF
Layout"): header magic/version/length, a JSON chunk padded with spaces, a BIN chunk padded with
zeros, each chunk's length a multiple of 4; and clear errors for what is not such a file."""
import json
import re
import struct

import pytest

from pose_factory import glb


def by_hand(doc_text: bytes, binary: bytes = b"", version=2, length_delta=0) -> bytes:
    text = doc_text + b" " * (-len(doc_text) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        binary += b"\0" * (-len(binary) % 4)
        body += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", version, 12 + len(body) + length_delta) + body


def test_written_files_follow_the_layout_and_read_back():
    doc = {"asset": {"version": "2.0"}, "extensions": {"VRMC_vrm": {"specVersion": "1.0"}}, "name": "é"}
    data = glb.write(doc, b"\x01\x02\x03")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data)) and len(data) % 4 == 0
    n, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON" and n % 4 == 0 and json.loads(data[20:20 + n]) == doc
    m, kind = struct.unpack_from("<I4s", data, 20 + n)
    assert kind == b"BIN\0" and m == 4 and data[28 + n:] == b"\x01\x02\x03\0"
    assert glb.read(data) == (doc, b"\x01\x02\x03\0")
    assert glb.read(by_hand(b'{"a": 1}')) == ({"a": 1}, b"")


def cut_bin_chunk() -> bytes:
    """A BIN chunk whose length runs past the file (the header's length agreeing with the file)."""
    data = by_hand(b"{}", b"abcdefgh")[:-4]
    return data[:8] + struct.pack("<I", len(data)) + data[12:]


@pytest.mark.parametrize("data, says", [
    (b"", "shorter than its header"),
    (b"PK\x03\x04" + b"\0" * 40, "not a glTF binary (GLB) file: it starts with"),
    (by_hand(b"{}", version=1), "only glTF 2.0"),
    (by_hand(b"{}", length_delta=8), "truncated GLB file"),
    (by_hand(b"{not json"), "JSON chunk does not parse"),
    (by_hand(b"[1, 2]"), "not an object"),
    (cut_bin_chunk(), "its BIN chunk runs past the end"),
])
def test_what_is_not_a_glb_is_a_clear_error(data, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        glb.read(data)
