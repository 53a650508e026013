"""Issue 21, point 12: a route body of deeply nested JSON is a 400 naming the limit, never a 500,
on every route that reads a JSON body (nodes/routes.py and the 3D API of nodes/mesh_routes.py),
through the real aiohttp handlers."""
from __future__ import annotations

import json

import pytest

from nodes import routes as R
from pose_factory.storage import LocalStorage
from tests.test_routes import _serve, make_settings

BODY_ROUTES = ["/pose_factory/projects", "/pose_factory/projects/poses/rename", "/pose_factory/refresh",
               "/pose_factory/viewer/scene", "/pose_factory/3d/from-image"]


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_the_parser_itself_cannot_take_such_a_body():
    """The oracle: Python's own json module fails on it with RecursionError (not a ValueError the
    routes turned into 'not valid JSON'), which reached aiohttp as a 500 before the fix."""
    with pytest.raises(RecursionError):
        json.loads(nested(100_000))


@pytest.mark.parametrize("body", [nested(100_000), b'{"name": ' + nested(100_000) + b"}",
                                  b'{"to": ' + nested(R.MAX_BODY_DEPTH + 1) + b"}",  # parses; too deep all the same
                                  b'{"project": ' + nested(5_000, '{"a": 1}') + b"}"],
                         ids=["list", "in-an-object", "just-past-the-limit", "lists-of-objects"])
def test_deeply_nested_json_bodies_are_a_400_naming_the_limit(body, tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")
    storage.put_bytes("projects/poses/project.json", b"{}")
    assert len(body) < R.VIEWER_MAX_BODY  # not refused for its size

    async def scenario(c):
        for path in BODY_ROUTES:
            r = await c.post(path, data=body, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path, r.status, await r.text())
            error = (await r.json())["error"]
            assert error.startswith("body: ") and "nested" in error, (path, error)
            assert f"at most {R.MAX_BODY_DEPTH} levels" in error, (path, error)

    _serve(settings, storage, scenario)


def test_bodies_within_the_limit_still_work(tmp_path):
    settings, storage = make_settings(tmp_path), LocalStorage(tmp_path / "storage")

    async def scenario(c):
        r = await c.post("/pose_factory/projects", json={"name": "dance", "display_name": "Dance"})
        assert r.status == 200
        r = await c.post("/pose_factory/refresh", data=b'{"project": "dance"}')
        assert r.status == 200
        r = await c.post("/pose_factory/projects", data=b"{not json")  # not JSON at all: as before
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
        r = await c.post("/pose_factory/viewer/scene", json={})  # the default scene
        assert r.status == 200 and (await r.json())["cameras"]

    _serve(settings, storage, scenario)
