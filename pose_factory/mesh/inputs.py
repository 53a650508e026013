"""The view set of a reconstruct job, checked before any work: images from files (e.g. under
ComfyUI's input folder), bytes or URLs (downloaded with size, type and time limits), their count,
sizes and masks (given, or made from the neutral background). Every refusal is a SpecError naming
the input and what is allowed."""
from __future__ import annotations

import io
import os
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import SpecError, echo

MAX_SIDE = 4096  # pixels, either side of a view image
MAX_PIXELS = MAX_SIDE * MAX_SIDE
MIN_SIDE = 64
MAX_DOWNLOAD_BYTES = 64 << 20
DOWNLOAD_TIMEOUT_S = 20
IMAGE_TYPES = ("PNG", "JPEG", "WEBP")
MIN_MASK_FRACTION = 0.001  # a mask with fewer pixels is empty
MAX_MASK_FRACTION = 0.98  # a mask with more leaves no background: no silhouette
BACKGROUND_TOLERANCE = 24  # 0..255: how far from the background colour a pixel must be to be the subject


def decode_image(data: bytes, where: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of PNG/JPEG/WebP bytes; the size is checked from the header before decoding."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked before decoding
    try:
        img = Image.open(io.BytesIO(data))
    except Exception:
        raise SpecError(where, "not an image file", "a PNG, JPEG or WebP image") from None
    if img.format not in IMAGE_TYPES:
        raise SpecError(where, f"a {img.format} image", "a PNG, JPEG or WebP image")
    w, h = img.size
    if w > MAX_SIDE or h > MAX_SIDE or w < MIN_SIDE or h < MIN_SIDE:
        raise SpecError(where, f"an image of {w}x{h} pixels", f"{MIN_SIDE} to {MAX_SIDE} pixels a side")
    try:
        rgb = img.convert("RGB")
    except Exception as e:  # truncated or corrupt data behind a sound header
        raise SpecError(where, f"the image could not be decoded ({type(e).__name__})", "a complete image file") from None
    return np.asarray(rgb, np.uint8)


def public_url(url: str) -> str:
    """A URL without its query and fragment, for messages and manifests: a presigned URL's
    signature is a credential."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, p.path, "", ""))


def fetch_url(url: str, where: str) -> bytes:
    """The bytes at an http(s) URL: at most MAX_DOWNLOAD_BYTES, an image content type, within
    DOWNLOAD_TIMEOUT_S per read. Messages name the URL without its query (public_url)."""
    import requests

    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise SpecError(where, f"got {echo(url)}", "an http:// or https:// URL")
    shown = public_url(url)
    try:
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_S, allow_redirects=True) as r:
            if r.status_code != 200:
                raise SpecError(where, f"{echo(shown)} answered HTTP {r.status_code}", "a URL that serves the image")
            kind = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind and not kind.startswith("image/") and kind != "application/octet-stream":
                raise SpecError(where, f"{echo(shown)} serves {kind!r}", "an image (image/png, image/jpeg, image/webp)")
            size = r.headers.get("Content-Length")
            if size and size.isdigit() and int(size) > MAX_DOWNLOAD_BYTES:
                raise SpecError(where, f"{echo(shown)} is {int(size)} bytes", f"at most {MAX_DOWNLOAD_BYTES} bytes")
            data = bytearray()
            for chunk in r.iter_content(1 << 16):
                data += chunk
                if len(data) > MAX_DOWNLOAD_BYTES:
                    raise SpecError(where, f"{echo(shown)} sends more than {MAX_DOWNLOAD_BYTES} bytes",
                                    f"at most {MAX_DOWNLOAD_BYTES} bytes")
            return bytes(data)
    except requests.RequestException as e:
        text = str(e)
        for secret in {q for q in (urlsplit(url).query, urlsplit(url).fragment) if q}:
            text = text.replace(secret, "…")
        raise SpecError(where, f"could not download {echo(shown)} ({type(e).__name__}: {echo(text, 200)})",
                        "a reachable http(s) URL") from None


def load_image(source, where: str, root=None) -> np.ndarray:
    """An image from bytes, an http(s) URL, or a file path (relative paths under root, and never
    outside it)."""
    if isinstance(source, (bytes, bytearray)):
        return decode_image(bytes(source), where)
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        return decode_image(fetch_url(source, where), where)
    if not isinstance(source, (str, os.PathLike)):
        raise SpecError(where, f"got {echo(source)}", "an image path, an http(s) URL or image bytes")
    path = os.fspath(source)
    if root is not None:
        root_abs = os.path.realpath(root)
        path = os.path.realpath(os.path.join(root_abs, path))
        if os.path.commonpath([root_abs, path]) != root_abs:
            raise SpecError(where, f"{echo(source)} lies outside the input folder", f"a path under {root_abs}")
    if not os.path.isfile(path):
        raise SpecError(where, f"{echo(source)} does not exist", "an existing image file")
    if os.path.getsize(path) > MAX_DOWNLOAD_BYTES:
        raise SpecError(where, f"{echo(source)} is {os.path.getsize(path)} bytes", f"at most {MAX_DOWNLOAD_BYTES} bytes")
    with open(path, "rb") as fh:
        return decode_image(fh.read(), where)


def check_sources(sources, project: str, field: str, limit: int) -> list:
    """A job's image list: 1..limit http(s) URLs or storage keys under the project's uploads/
    (what a client uploaded); SpecError names the field and item."""
    if not isinstance(sources, list) or not 1 <= len(sources) <= limit:
        raise SpecError(field, f"got {echo(sources, 60)}", f"a list of 1 to {limit} image sources (http(s) URLs, "
                                                           f"or keys under projects/{project}/uploads/)")
    prefix = f"projects/{project}/uploads/"
    for i, s in enumerate(sources):
        ok = isinstance(s, str) and (s.lower().startswith(("http://", "https://"))
                                     or (s.startswith(prefix) and ".." not in s and "\\" not in s))
        if not ok:
            raise SpecError(f"{field}[{i}]", f"got {echo(s)}", f"an http(s) URL or a key under {prefix}")
    return sources


def load_source(storage, source: str, where: str) -> np.ndarray:
    """A job's image source (a reconstruct's view, an extract's photo): an http(s) URL (fetch_url's
    limits) or a storage key, read only when it is at most MAX_DOWNLOAD_BYTES."""
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        return load_image(source, where)
    if hasattr(storage, "local_path"):  # a folder: the file's size, not a listing of its folder
        path = storage.local_path(source)
        size = path.stat().st_size if path.is_file() else None
    else:
        size = (storage.list_info(source).get(source) or {}).get("size")
    if size is None:
        raise SpecError(where, f"{echo(source)} is not in storage", "a key of an uploaded image")
    if size > MAX_DOWNLOAD_BYTES:
        raise SpecError(where, f"{echo(source)} is {size} bytes", f"at most {MAX_DOWNLOAD_BYTES} bytes")
    return decode_image(storage.get_bytes(source), where)


def background_mask(image: np.ndarray, tolerance: int = BACKGROUND_TOLERANCE) -> np.ndarray:
    """The subject of a view on a neutral background: pixels farther than tolerance from the
    background colour (the median of the image's border), holes filled."""
    from scipy import ndimage

    img = image.astype(np.int16)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg = np.median(border, axis=0)
    mask = np.abs(img - bg).max(-1) > tolerance
    mask = ndimage.binary_opening(mask, iterations=1)
    return ndimage.binary_fill_holes(mask)


def check_view_set(images, masks, n_cameras: int | None) -> list[np.ndarray]:
    """The masks (given, or from the background) of a checked view set."""
    n = len(images)
    if n_cameras is None and n not in (4, 8):
        raise SpecError("images", f"got {n} views", "4 or 8 views (the canonical view sets)")
    if n_cameras is not None and n != n_cameras:
        raise SpecError("images", f"got {n} views for {n_cameras} cameras", f"{n_cameras} views, one per camera")
    shape = images[0].shape
    for i, img in enumerate(images):
        if img.shape != shape:
            raise SpecError(f"images[{i}]", f"{img.shape[1]}x{img.shape[0]} pixels",
                            f"the size of view 0 ({shape[1]}x{shape[0]}): every view the same size")
    if masks is None:
        masks = [background_mask(img) for img in images]
    elif len(masks) != n:
        raise SpecError("masks", f"got {len(masks)} masks for {n} views", "one mask per view")
    out = []
    for i, m in enumerate(masks):
        m = np.asarray(m)
        if m.shape != shape[:2]:
            raise SpecError(f"masks[{i}]", f"of shape {m.shape}", f"the view's size {shape[:2]}")
        m = m > (127 if m.dtype == np.uint8 else 0.5)
        frac = float(m.mean())
        if frac < MIN_MASK_FRACTION:
            raise SpecError(f"masks[{i}]", "empty (no subject found in this view)",
                            "a mask covering the subject (or a view on a plain, neutral background)")
        if frac > MAX_MASK_FRACTION:
            raise SpecError(f"masks[{i}]", f"covers {frac:.0%} of the view (no background left)",
                            "a subject inside the frame on a plain background")
        out.append(m)
    return out
