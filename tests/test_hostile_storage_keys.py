"""Issue 21, point 12: keys and prefixes a file system or S3 cannot take get the pack's own
StorageError, naming the key and the limit, from both backends alike (the local folder, and
moto's S3 server on loopback reached through boto3 as R2 is)."""
from __future__ import annotations

import errno
import os

import pytest

from pose_factory import storage as S
from pose_factory.errors import StorageError
from tests.s3_support import bucket, moto_server, proxy, store  # noqa: F401

LONG_PART = "x" * 300  # a file or folder name longer than NAME_MAX (255 on Linux, macOS and Windows)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    if request.param == "local":
        return S.LocalStorage(tmp_path / "root")
    return request.getfixturevalue("store")


def test_the_file_system_itself_refuses_such_a_name(tmp_path):
    """The oracle: this machine's file system really cannot hold the name (so the local backend
    met a raw OSError from it before the fix)."""
    with pytest.raises(OSError) as info:
        (tmp_path / LONG_PART).write_bytes(b"x")
    assert info.value.errno == errno.ENAMETOOLONG
    assert os.pathconf(tmp_path, "PC_NAME_MAX") < len(LONG_PART)


@pytest.mark.parametrize("key", [f"projects/p/{LONG_PART}.png", f"{LONG_PART}/a.png",
                                 f"projects/p/uploads/{'é' * 150}.png"])  # 150 characters, 300 bytes in UTF-8
def test_a_key_part_longer_than_a_file_name_may_be_is_a_storage_error(backend, key, tmp_path):
    calls = {"put_bytes": lambda: backend.put_bytes(key, b"x"), "get_bytes": lambda: backend.get_bytes(key),
             "exists": lambda: backend.exists(key), "delete": lambda: backend.delete(key)}
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    calls["put_file"] = lambda: backend.put_file(key, src)
    for name, call in calls.items():
        with pytest.raises(StorageError) as info:
            call()
        text = str(info.value)
        assert "255" in text and "bytes" in text, (name, text)  # the limit
        assert key[:40] in text, (name, text)  # the key (shortened: it is long)
    assert backend.list("") == []  # nothing was written


def test_a_key_longer_than_s3_allows_is_a_storage_error(backend):
    key = "/".join(["d" * 200] * 6)  # every part a valid name; 1205 bytes in all, S3 takes at most 1024
    with pytest.raises(StorageError, match="1024"):
        backend.put_bytes(key, b"x")
    with pytest.raises(StorageError, match="1024"):
        backend.exists(key)


def test_a_key_at_the_limits_still_works(backend):
    key = "/".join(["d" * 255] * 4)  # 1023 bytes: every part at NAME_MAX, the whole under S3's 1024
    backend.put_bytes(key, b"ok")
    assert backend.get_bytes(key) == b"ok" and backend.exists(key)
    assert backend.list("d") == [key]
    backend.delete(key)
    assert not backend.exists(key)


@pytest.mark.parametrize("prefix", [3, None, b"projects/", ["projects/"]])
def test_list_with_a_prefix_that_is_not_a_string_names_the_argument(backend, prefix):
    backend.put_bytes("projects/a/x.json", b"1")
    for call in (backend.list, backend.list_info):
        with pytest.raises(StorageError) as info:
            call(prefix)
        assert "prefix" in str(info.value) and "a string" in str(info.value)


@pytest.mark.parametrize("prefix", [LONG_PART, f"projects/{LONG_PART}/", f"projects/{LONG_PART}"])
def test_list_with_a_too_long_prefix_answers_alike(backend, prefix):
    backend.put_bytes("projects/a/x.json", b"1")
    for call in (backend.list, backend.list_info):
        with pytest.raises(StorageError, match="255 bytes"):
            call(prefix)
    assert backend.list("projects/") == ["projects/a/x.json"]
