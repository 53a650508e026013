"""PNG reading and writing (8-bit RGB/gray, 16-bit gray) through OpenCV, imported lazily."""
from __future__ import annotations

import os

import numpy as np


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
