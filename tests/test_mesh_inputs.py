"""A reconstruct job's view images are refused with a clear error before any work: not an image,
too large (from its header, before decoding), a URL nobody answers, a path outside its root."""
import socket

import pytest

from pose_factory.errors import SpecError
from pose_factory.mesh import inputs
from tests.s3_support import png_bomb, png_bytes


def test_a_good_png_decodes():
    img = inputs.load_image(png_bytes(1, 96), "images[0]")
    assert img.shape == (96, 96, 3) and img.dtype.name == "uint8"


def test_a_non_image_file_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels")
    with pytest.raises(SpecError, match=r"images\[1\]: not an image file, allowed: a PNG, JPEG or WebP image"):
        inputs.load_image(str(path), "images[1]")


def test_a_30000_pixel_image_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bomb(30000, 30000, colour=0))
    with pytest.raises(SpecError, match=r"images\[0\]: an image of 30000x30000 pixels, allowed: 64 to 4096 pixels"):
        inputs.load_image(str(path), "images[0]")


def test_a_url_to_a_closed_port_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is: nobody listens there
    with pytest.raises(SpecError, match=rf"images\[2\]: could not download 'http://127.0.0.1:{port}/v.png' "
                                        r"\(ConnectionError.*allowed: a reachable http\(s\) URL"):
        inputs.load_image(f"http://127.0.0.1:{port}/v.png", "images[2]")


def test_a_path_outside_the_input_folder_is_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(png_bytes(2, 64))
    (tmp_path / "input").mkdir()
    with pytest.raises(SpecError, match=r"lies outside the input folder"):
        inputs.load_image("../secret.png", "images[0]", root=tmp_path / "input")
