"""Real parts for the S3 tests and the bench (DESIGN.md §6): moto's S3 server in its own process on
loopback, and a latency-and-fault HTTP proxy in front of it (threads, standard library only).

Used as ``from tests.s3_support import ...`` (pyproject puts the repository root on sys.path).
"""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

LOOPBACK = "127.0.0.1"
REGION = "auto"  # R2's region; moto accepts it with LocationConstraint "auto" (checked in the tests)
ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-key-never-shown"
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "trailer"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` in a child process (its own GIL, as R2 is another machine)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto server did not start within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class FaultProxy:
    """A loopback HTTP proxy: waits ``latency`` seconds per request, counts GETs per object key,
    records their Range headers, and can cut a response body after N bytes (a real truncated
    transfer: the full Content-Length is announced, then the socket is closed)."""

    def __init__(self, upstream_port: int, latency: float = 0.0):
        self.upstream_port, self.latency = upstream_port, latency
        self.lock = threading.Lock()
        self.gets: Counter = Counter()  # "bucket/key" -> GET count
        self.ranges: list[tuple[str, str | None]] = []  # (bucket/key, Range header) of each GET
        self.puts: Counter = Counter()
        self.log: list[tuple[str, str]] = []  # (method, bucket/key) in arrival order
        self._cuts: dict[str, list[int]] = {}  # bucket/key -> [bytes to let through, cuts left]
        self._stalls: dict[str, tuple[int, float]] = {}  # bucket/key -> (bytes, seconds silent) of the next GET
        self.released = threading.Event()  # ends every stall at once (stop() sets it)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive towards boto3, as a real endpoint

            def log_message(self, *args):
                pass

            def _relay(self):
                proxy._relay(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a cut connection is no test failure
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def cut(self, object_key: str, after_bytes: int, times: int = 1):
        """The next ``times`` GETs of ``bucket/key`` stop after ``after_bytes`` bytes of body."""
        with self.lock:
            self._cuts[object_key] = [after_bytes, times]

    def stall(self, object_key: str, after_bytes: int, hold_s: float):
        """The next GET of ``bucket/key`` sends ``after_bytes`` bytes of body, then goes silent
        for ``hold_s`` seconds with the connection open (a stalled peer), then closes it. The
        log gets ("STALL-END", key) when the silence ends."""
        with self.lock:
            self._stalls[object_key] = (after_bytes, hold_s)

    def reset_counts(self):
        with self.lock:
            self.gets.clear()
            self.puts.clear()
            self.ranges.clear()
            self.log.clear()

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # --- one request ------------------------------------------------------------------------------
    def _relay(self, h: BaseHTTPRequestHandler):
        if self.latency:
            time.sleep(self.latency)
        body = _read_body(h)
        obj = unquote(urlsplit(h.path).path).lstrip("/")
        cut_at = stall = None
        with self.lock:
            self.log.append((h.command, obj))
            if h.command == "GET":
                self.gets[obj] += 1
                self.ranges.append((obj, h.headers.get("Range")))
                rule = self._cuts.get(obj)
                if rule and rule[1] > 0:
                    cut_at, rule[1] = rule[0], rule[1] - 1
                stall = self._stalls.pop(obj, None)
            elif h.command == "PUT":
                self.puts[obj] += 1
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        up = http.client.HTTPConnection(LOOPBACK, self.upstream_port, timeout=60)
        try:
            up.request(h.command, h.path, body=body, headers=headers)
            resp = up.getresponse()
            data = resp.read()
            h.send_response_only(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP and k.lower() != "content-length":
                    h.send_header(k, v)
            if h.command == "HEAD":  # no body: pass the object's length on as it is
                h.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            else:
                h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command == "HEAD":
                return
            if stall is not None and stall[0] < len(data):
                h.wfile.write(data[:stall[0]])
                h.wfile.flush()
                self.released.wait(stall[1])  # silence, the connection open
                with self.lock:
                    self.log.append(("STALL-END", obj))
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if cut_at is not None and cut_at < len(data):
                h.wfile.write(data[:cut_at])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)  # the client sees a body that ends early
                return
            h.wfile.write(data)
        finally:
            up.close()


def _read_body(h: BaseHTTPRequestHandler) -> bytes | None:
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        parts = []
        for _ in range(1 << 20):  # bounded: at most a million chunks
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                for _ in range(100):  # trailers, up to the blank line
                    if h.rfile.readline() in (b"\r\n", b"\n", b""):
                        break
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()
        raise ValueError("too many chunks")
    n = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(n) if n else None


def make_bucket(endpoint_url: str, name: str | None = None) -> str:
    """A new bucket created as on R2: region ``auto``, LocationConstraint ``auto``."""
    import boto3

    name = name or f"pf-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY)
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def s3_storage(endpoint_url: str, bucket: str, **kw):
    from pose_factory.storage.s3 import S3Storage

    return S3Storage(bucket, endpoint_url, ACCESS_KEY, SECRET_KEY, region=REGION, **kw)


# --- pytest fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(moto_server):
    p = FaultProxy(moto_server.port, latency=0.04)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def bucket(moto_server):
    return make_bucket(moto_server.url)


@pytest.fixture
def store(proxy, bucket):
    """An S3Storage on a fresh bucket, reached through the 40 ms proxy."""
    return s3_storage(proxy.url, bucket)


# --- batches --------------------------------------------------------------------------------------
def camera(i: int, width: int = 64, height: int = 64) -> dict:
    """A plausible manifest camera (the manifest checks shapes, not geometry)."""
    return {"index": i, "name": f"v{i:02d}", "location": [0.0, -3.0, 1.0],
            "rotation": [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
            "world_to_camera": [[1, 0, 0, 0], [0, 0, -1, 1], [0, 1, 0, 3], [0, 0, 0, 1]],
            "intrinsics": {"fx": 100.0, "fy": 100.0, "cx": (width - 1) / 2, "cy": (height - 1) / 2,
                           "width": width, "height": height, "orthographic": False, "ortho_scale": "auto"}}


def write_batch(storage, project: str, batch_id: str, files: dict, views: int, frames: int,
                commit: bool = True, on_file=None, width: int = 64, height: int = 64) -> dict:
    """Uploads ``files`` ({(pass, view, frame): bytes}) through BatchWriter, then the manifest
    (unless commit is False) of a width x height batch; returns the manifest."""
    from pose_factory import manifest as M
    from pose_factory.storage import BatchWriter

    w = BatchWriter(storage, project, batch_id)
    entries = {(v, f): {"view": v, "frame": f, "files": {}} for f in range(frames) for v in range(views)}
    for (name, v, f), data in files.items():
        ext = "json" if name == "keypoints" else "png"
        entries[(v, f)]["files"][name] = w.add_file(M.image_key(name, v, f, ext), data)
        if on_file is not None:
            on_file(name, v, f)
    m = M.build_manifest(batch_id=batch_id, project=project, spec={}, recipe_version=1, worker_version="test",
                         blender_version="none", width=width, height=height,
                         views=[camera(i, width, height) for i in range(views)],
                         frames=frames, entries=list(entries.values()))
    return w.commit(m) if commit else m


def png_bytes(seed: int, size: int = 64) -> bytes:
    """A real PNG: smooth random colour fields plus noise (compresses like a render, not like zeros)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (size // 32 + 1, size // 32 + 1, 3)).astype(np.uint8)
    img = np.kron(low, np.ones((32, 32, 1), np.uint8))[:size, :size]
    img = (img.astype(np.int16) + rng.integers(-12, 13, img.shape)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def png_bomb(width: int, height: int, colour: int = 2, depth: int = 8) -> bytes:
    """A real, valid PNG of width x height black pixels (colour type 0 gray, 2 RGB, 6 RGBA) that
    compresses about a thousandfold: a few MB on disk, gigabytes once decoded. Built row by row,
    so making it never holds the decoded image (30000x30000 RGB: about 20 s)."""
    import struct
    import zlib

    row = bytes(1 + width * {0: 1, 2: 3, 4: 2, 6: 4}[colour] * depth // 8)  # filter byte 0, then zeros
    comp = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = b"".join([comp.compress(row) for _ in range(height)] + [comp.flush()])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
