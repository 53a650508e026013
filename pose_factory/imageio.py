"""PNG reading and writing (8-bit RGB/gray, 16-bit gray) through OpenCV, imported lazily, and a
PNG's header read without decoding it (what a loader checks before it lets a decoder allocate)."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_HEADER_BYTES = 33  # signature (8) + IHDR: length (4), type (4), 13 bytes of data, CRC (4)
COLOUR_TYPES = {0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"}


def png_header(head: bytes, name: str = "image") -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the first PNG_HEADER_BYTES of a PNG (its IHDR
    chunk, which the PNG standard puts first). OSError naming ``name`` when they are not a PNG's."""
    if len(head) < PNG_HEADER_BYTES or head[:8] != PNG_SIGNATURE:
        raise OSError(f"{name}: not a PNG file (no PNG signature)")
    length, kind = struct.unpack(">I4s", head[8:16])
    if kind != b"IHDR" or length != 13 or zlib.crc32(head[12:29]) != struct.unpack(">I", head[29:33])[0]:
        raise OSError(f"{name}: not a valid PNG (its first chunk is not a sound IHDR)")
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, colour


def read_png_header(path) -> tuple[int, int, int, int]:
    """png_header of a file: reads its first 33 bytes, decodes nothing."""
    with open(path, "rb") as fh:
        return png_header(fh.read(PNG_HEADER_BYTES), os.fspath(path))


def describe_png(depth: int, colour: int) -> str:
    """'8-bit RGB', '16-bit gray'."""
    return f"{depth}-bit {COLOUR_TYPES.get(colour, f'colour type {colour}')}"


def _cv2():
    try:
        import cv2
    except ImportError as e:  # the pack imports without it; only image work needs it
        raise ImportError("pose_factory needs OpenCV for image files: pip install opencv-python") from e
    return cv2


def encode_png(array: np.ndarray, compression: int = 1) -> bytes:
    """RGB (H,W,3) or gray (H,W) uint8/uint16 as PNG bytes. Low compression: these files are
    written once per view, fast."""
    cv2 = _cv2()
    img = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError(f"could not encode a {array.dtype} image of shape {array.shape} as PNG")
    return buf.tobytes()


def write_png(path: str, array: np.ndarray, compression: int = 1) -> None:
    """encode_png into a file, written to a temp name then renamed, so a reader never sees half
    a file."""
    data = encode_png(array, compression)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def read_png(path: str) -> np.ndarray:
    """Reads a PNG (or any format OpenCV knows). Returns RGB (H,W,3) or gray (H,W), keeping the bit depth."""
    cv2 = _cv2()
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"could not read image {path}")
    if img.ndim == 3:
        img = img[:, :, 2::-1] if img.shape[2] >= 3 else img
    return img
