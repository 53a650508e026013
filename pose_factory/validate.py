"""The small checkers every spec is validated with (the JobSpec, the extract, reconstruct and
mesh-passes specs, props): each returns the clean value or raises one SpecError naming the field,
what it got and what is allowed. Standard library only.
"""
from __future__ import annotations

import difflib
import math
import numbers

from .errors import SpecError, echo


def subfield(field: str, key) -> str:
    """'cameras', 0 -> 'cameras[0]'; 'render', 'width' -> 'render.width'; '', 'kind' -> 'kind'."""
    return f"{field}[{key}]" if isinstance(key, int) else (f"{field}.{key}" if field else key)


def describe(v) -> str:
    """A short, safe description of a value for an error message: null, true, 'text', an object,
    a list of 3, a number, or the type's name."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return repr(v) if len(v) <= 40 else repr(v[:37] + "...")
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, (list, tuple)):
        return f"a list of {len(v)}"
    return echo(v, 40) if isinstance(v, numbers.Number) else type(v).__name__


def check_object(raw, field: str, keys, required=()) -> dict:
    """raw must be a dict with only the given keys and every required one."""
    if not isinstance(raw, dict):
        raise SpecError(field or "spec", f"got {describe(raw)}", "an object")
    for k in raw:
        if k not in keys:
            name = k if isinstance(k, str) and len(k) <= 60 else echo(k, 60)
            close = difflib.get_close_matches(name, list(keys), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(subfield(field, name), f"unknown key {echo(k, 60)}{hint}", "keys " + ", ".join(keys))
    for k in required:
        if k not in raw:
            raise SpecError(subfield(field, k), "missing (required)")
    return raw


def check_int(v, field: str, lo: int, hi: int, step: int = 1) -> int:
    what = f"a multiple of {step} from {lo} to {hi}" if step > 1 else f"an integer from {lo} to {hi}"
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or not lo <= v <= hi or v % step:
        raise SpecError(field, f"got {describe(v)}", what)  # 4.0, "4" and true are not integers
    return int(v)


def is_finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float (hundreds of digits)
        return False


def check_number(v, field: str, lo: float, hi: float, unit: str = "") -> float:
    """A finite number from lo to hi, rounded to 4 decimals (-0.0 becomes 0.0)."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not is_finite(v) or not lo <= v <= hi:
        raise SpecError(field, f"got {describe(v)}", f"a number from {lo:g} to {hi:g}{unit}")
    return round(float(v), 4) + 0.0  # + 0.0: -0.0 becomes 0.0


def check_number_or_auto(v, field, lo, hi, unit=""):
    if v == "auto":
        return "auto"
    try:
        return check_number(v, field, lo, hi, unit)
    except SpecError as e:
        raise SpecError(field, e.message, f'"auto" or {e.allowed}') from None


def check_bool(v, field: str) -> bool:
    if not isinstance(v, bool):
        raise SpecError(field, f"got {describe(v)}", "true or false")
    return v


def check_choice(v, field: str, choices) -> str:
    if not isinstance(v, str) or v not in choices:
        raise SpecError(field, f"got {describe(v)}", "one of " + ", ".join(choices))
    return v


def check_vector(v, field: str, n: int, lo: float, hi: float, unit: str = "") -> list:
    """A list of n numbers, each as check_number."""
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise SpecError(field, f"got {describe(v)}", f"a list of {n} numbers")
    return [check_number(c, subfield(field, i), lo, hi, unit) for i, c in enumerate(v)]
