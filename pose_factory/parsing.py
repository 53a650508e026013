"""Reading text from users and buckets (spec files, the config, .env, manifests, keypoint files):
UTF-8, JSON and YAML, with every way it can fail (bad bytes, bad syntax, numbers of thousands of
digits, nesting deeper than the parser's recursion, a duplicated YAML key) turned into the
caller's own named error. ``error(message)`` makes that error; the message says what was wrong
and what is allowed. Standard library only (PyYAML imported when YAML is read)."""
from __future__ import annotations

import json
import os

from .errors import clip


def decode_utf8(data: bytes, error) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"not UTF-8 text (byte {data[e.start:e.start + 1]!r} at offset {e.start}), "
                    "allowed: a UTF-8 text file") from None


def read_text(path, error) -> str:
    """The UTF-8 text of a file; OSError (missing, unreadable) goes on as it is."""
    with open(os.fspath(path), "rb") as fh:
        return decode_utf8(fh.read(), error)


def loads_json(data, error):
    """json.loads of str or UTF-8 bytes."""
    if isinstance(data, (bytes, bytearray)):
        data = decode_utf8(bytes(data), error)
    try:
        return json.loads(data)
    except RecursionError:
        raise error("JSON nested too deeply, allowed: a few hundred levels at most") from None
    except json.JSONDecodeError as e:
        raise error(f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except ValueError as e:  # e.g. an integer over Python's 4300-digit limit
        raise error(f"not valid JSON ({clip(e, 300)})") from None


def nesting_depth(obj, limit: int) -> int:
    """Levels of lists and objects in a parsed JSON value (a scalar is 0, [1] is 1), counted up to
    limit + 1: what lies deeper is not walked, so a hostile value costs little. No recursion."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, tuple, dict)):
            depth += 1
            deepest = max(deepest, depth)
            if depth <= limit:
                stack.extend((v, depth) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _unique_key_loader():
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        if key in seen:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"duplicate key {clip(repr(key), 120)}: each key may appear once "
                                "in a mapping", key_node.start_mark)
                        seen.add(key)
                    except TypeError:  # an unhashable key: SafeLoader refuses it itself
                        pass
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def loads_yaml(text: str, error):
    """YAML (safe subset), refusing duplicate keys."""
    try:
        import yaml
    except ImportError:
        raise error("reading YAML needs PyYAML, allowed: a .json file, or `pip install pyyaml`") from None
    try:
        return yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise error("YAML nested too deeply, allowed: a few hundred levels at most") from None
    except yaml.YAMLError as e:
        raise error(f"not valid YAML ({clip(e, 500)})") from None
    except ValueError as e:  # e.g. an int over Python's digit limit
        raise error(f"not valid YAML ({clip(e, 300)})") from None
