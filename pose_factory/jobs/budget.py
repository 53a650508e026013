"""GPU cost control (DESIGN.md §4 "Cost"): a cost estimate per RunPod job and a local SQLite
ledger that holds the monthly GPU budget.

A cloud job goes through the ledger in three steps:

    usd = estimate_cost(expected_execution_s, None, "24gb", idle_timeout_s=5)
    ledger.reserve(job_key, usd)         # before submitting: raises BudgetExceeded if it would not fit
    ...submit, poll...
    ledger.settle(job_key, actual, details)   # or ledger.release(job_key) when it never ran

A reservation carries an expiry (the job's timeout plus a margin) and its owner (host and process
id): a client killed between reserve and settle would otherwise hold its money for ever. Every
reserve first releases the expired ones, logging each, into a table of released reservations
(a settle that comes late still records its cost). ``python -m pose_factory budget`` lists them.

``reserve`` checks and records in one SQLite write transaction (BEGIN IMMEDIATE), so two
processes that reserve at once are serialised: of two jobs that only together exceed what is
left, exactly one is refused. SQLite's own locking works the same on Linux, macOS and Windows
(no fcntl). Money is stored as integer micro-dollars so sums are exact.

The ledger file must be on a local disk: SQLite's WAL mode does not work over network shares.
Standard library only.
"""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import echo

log = logging.getLogger("pose_factory.budget")

# RunPod serverless flex prices in USD per second, 2026 (DESIGN.md §5). "48gb" is the low end of
# that class's $0.00034–0.00053 range; set gpu_class to a dearer class to plan conservatively.
PRICES_PER_SECOND = {
    "16gb": 0.00016,
    "24gb": 0.00019,
    "48gb": 0.00034,
    "a100": 0.00076,
    "h100": 0.00116,
}

# A cold start of the worker image (pull-cached container start, Python and bpy import): an
# allowance, since RunPod bills it but reports it only mixed with queue time in delayTime.
DEFAULT_STARTUP_S = 30.0
DEFAULT_MONTHLY_LIMIT_USD = 80.0  # of the founding $100 a month: GPU $60–80 (DESIGN.md §4)

# A reservation made without an expiry (or by an older version) expires after this long.
DEFAULT_RESERVATION_S = 6 * 3600.0
_MICROS = 1_000_000

# Render time of a batch, in seconds of the reference machine (Cycles on CPU; README "Cost and
# time estimates"), from the job's size (spec.job_size). Fitted by `bench/bench_render.py
# --calibrate`, which renders small batches, fits these terms and prints the fit next to what it
# measured:
#   seconds = startup_s
#           + images x (image_s + megapixels_per_image x (data_s_per_mp + files x file_s_per_mp))
#           + images x (shaded_image_s + megapixels_per_image x samples x sample_s_per_mp)   [shaded, samples > 1]
RENDER_MODEL = {  # fitted 2026-11-30 (README "Cost and time estimates" has the run)
    "startup_s": 0.6,          # a warm Blender child's start and scene set-up, once per render process
    "image_s": 0.036,          # per image: camera, visibility rays, keypoints
    "data_s_per_mp": 0.18,     # the 1-sample data render, per megapixel
    "file_s_per_mp": 0.016,    # each image file's encoding, per megapixel
    "shaded_image_s": 0.066,   # a shaded render of its own (samples > 1): per image
    "sample_s_per_mp": 0.082,  # ... and per sample and megapixel
}


class LedgerError(RuntimeError):
    """The ledger file cannot be opened or written (a bad budget.ledger_path, a full disk, a
    damaged file); the message names the file and the setting."""


class BudgetExceeded(RuntimeError):
    """A job's estimate does not fit in what is left of this month's GPU budget.

    Attributes (dollars): ``committed_usd`` (spent this month + open reservations),
    ``estimate_usd``, ``limit_usd``; ``month`` is "YYYY-MM" (UTC)."""

    def __init__(self, committed_usd: float, estimate_usd: float, limit_usd: float, month: str):
        super().__init__(committed_usd, estimate_usd, limit_usd, month)  # args round-trip through pickle
        self.committed_usd, self.estimate_usd = committed_usd, estimate_usd
        self.limit_usd, self.month = limit_usd, month

    def __str__(self) -> str:
        left = max(self.limit_usd - self.committed_usd, 0.0)
        return (f"monthly GPU budget: ${self.committed_usd:.2f} spent or reserved of "
                f"${self.limit_usd:.2f} in {self.month} (UTC); this job's estimate "
                f"${self.estimate_usd:.2f} would exceed it (${left:.2f} left). Use fewer views or "
                f"frames, raise budget.monthly_gpu_limit_usd in the config, or wait for next month")


def _finite(value) -> bool:
    try:
        return math.isfinite(value) and value < 1e15
    except OverflowError:
        return False


def _check_usd(name: str, value) -> float:
    """value as a float when it is a finite, non-negative number, else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number of dollars, got {echo(value)}")
    if not _finite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite amount >= 0 (below 1e15), got {echo(value)}")
    return float(value)


def _check_seconds(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number of seconds, got {echo(value)}")
    if not _finite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite duration >= 0 s (below 1e15), got {echo(value)}")
    return float(value)


def _check_job_key(job_key) -> str:
    if not isinstance(job_key, str) or not job_key.strip() or len(job_key) > 200:
        raise ValueError(f"job_key: expected a non-empty string of at most 200 characters, got {echo(job_key)}")
    return job_key


def price_per_second(gpu_class: str) -> float:
    key = gpu_class.strip().lower() if isinstance(gpu_class, str) else gpu_class
    if key not in PRICES_PER_SECOND:
        raise ValueError(f"gpu_class: got {gpu_class!r}, allowed: {', '.join(PRICES_PER_SECOND)}")
    return PRICES_PER_SECOND[key]


def estimate_cost(execution_s, delay_s, gpu_class: str, idle_timeout_s,
                  startup_s=DEFAULT_STARTUP_S) -> float:
    """Estimated USD of one RunPod serverless job: (execution + start-up + idle) × price per second.

    RunPod bills a worker from its start to its stop; a job's status reports only ``delayTime``
    and ``executionTime`` (ms), so the bill is estimated term by term:

    - execution: ``execution_s`` (executionTime / 1000), billed in full;
    - start-up: a cold start is billed but delayTime also counts the unbilled wait in the queue,
      so the term is ``min(delay_s, startup_s)``; ``delay_s=None`` (before the job ran) counts a
      full cold start, ``startup_s``;
    - idle allowance: after the job the worker stays up for the endpoint's idle timeout, billed;
      counted in full for every job (an upper bound when jobs run back to back on one worker).
    """
    execution = _check_seconds("execution_s", execution_s)
    startup = _check_seconds("startup_s", startup_s)
    if delay_s is not None:
        startup = min(_check_seconds("delay_s", delay_s), startup)
    idle = _check_seconds("idle_timeout_s", idle_timeout_s)
    return (execution + startup + idle) * price_per_second(gpu_class)


def estimate_from_status(status: dict, gpu_class: str, idle_timeout_s,
                         startup_s=DEFAULT_STARTUP_S) -> tuple[float, dict]:
    """(USD, details) for a finished job from its v2 ``/status`` reply (delayTime and
    executionTime in ms; a missing one counts 0). details is what ``Ledger.settle`` records."""
    if not isinstance(status, dict):
        raise ValueError(f"status: expected the /status reply as a dict, got {type(status).__name__}")
    delay_ms = status.get("delayTime") or 0
    exec_ms = status.get("executionTime") or 0
    usd = estimate_cost(_check_seconds("executionTime", exec_ms) / 1000.0,
                        _check_seconds("delayTime", delay_ms) / 1000.0,
                        gpu_class, idle_timeout_s, startup_s)
    details = {"runpod_id": status.get("id"), "status": status.get("status"),
               "delay_ms": delay_ms, "execution_ms": exec_ms, "gpu_class": gpu_class,
               "idle_timeout_s": idle_timeout_s, "startup_s": startup_s, "estimated": True}
    return usd, details


def estimate_render_seconds(size: dict, model: dict | None = None) -> float:
    """Seconds one render process takes for a job of this size (spec.job_size) by RENDER_MODEL."""
    m = RENDER_MODEL if model is None else model
    images, mp = size["images"], size["width"] * size["height"] / 1e6
    t = m["startup_s"] + images * (m["image_s"] + mp * (m["data_s_per_mp"] + size["files_per_image"] * m["file_s_per_mp"]))
    if size["shaded_samples"] > 1:
        t += images * (m["shaded_image_s"] + mp * size["shaded_samples"] * m["sample_s_per_mp"])
    return t


def estimate_job(spec: dict, runpod: dict | None = None, views: int | None = None, times=None,
                 warm: bool = True) -> dict:
    """A normalized spec's estimate: {"size": spec.job_size, "seconds": render seconds, "usd": the
    RunPod cost by estimate_cost (None unless ``runpod``, the settings' runpod section, is given:
    seconds x speed_factor of execution, its start-up and idle), "basis": what the seconds come
    from, "cold_s": the worker's start added when it is not warm (0 when warm), "text"}.
    ``views``: only that many of the spec's views (a shard). ``times``: this machine's measured
    renders (a RenderTimes; None: RENDER_MODEL alone, a first guess); ``warm``: whether the local
    worker is running (else its start, learned from cold renders, is added: "cold_s")."""
    from ..spec import job_size

    size = job_size(spec, views)
    model_s = estimate_render_seconds(size)
    learned = learn_seconds(times.rows() if times is not None else [], render_key(spec), model_s, warm)
    if times is None:  # RunPod, or no history asked for: the model, whatever this machine measured
        learned.update(basis="first guess: the render model", cold_s=0.0, cold_basis="")
    seconds = learned["seconds"]
    usd = None
    if runpod is not None:
        usd = estimate_cost(model_s * runpod["speed_factor"], None, runpod["gpu_class"], runpod["idle_timeout_s"],
                            runpod["startup_s"])
    text = describe_size(size, seconds) + f" ({learned['basis']})"
    if learned["cold_basis"]:  # the worker is not running: its start is said, even a measured ~0 s
        text += f" + ~{_duration(learned['cold_s'])} to start the worker ({learned['cold_basis']})"
    return {"size": size, "seconds": seconds, "usd": usd, "basis": learned["basis"], "cold_s": learned["cold_s"],
            "cold_basis": learned["cold_basis"], "model_s": model_s, "text": text + ("" if usd is None else f", ~${usd:.2f} on RunPod ({runpod['gpu_class']})")}


# --- this machine's own render times (issue 21.10) ------------------------------------------------
# The model above is fitted on one machine; this one may be slower (a busy CPU) or faster. Every
# render the local worker makes records its measured seconds (the client's wall time from the job's
# submission to its end, the worker's start included when it was not running: "cold"), next to the
# model's estimate for it, in the ledger's SQLite file. An estimate then scales the model by the
# median of measured / model over the latest LEARN_FROM warm renders of the same image size and pass
# set ("from N renders on this machine"), else of any warm render here ("... other sizes or passes"),
# else it is the model ("first guess"). A cold start adds the median of (measured - warm estimate)
# over the latest cold renders, else FIRST_GUESS_COLD_S.
LEARN_FROM = 20
FIRST_GUESS_COLD_S = 10.0  # the worker's start: Python, then a Blender child importing bpy (2026-12, 2 cores)


def render_key(spec: dict) -> str:
    """What a render's time is learned by: its image size, pass set and shaded samples."""
    r = spec["render"]
    samples = r.get("shaded_samples", 0) if "shaded" in r["passes"] else 0
    return f"{r['width']}x{r['height']} {'+'.join(sorted(r['passes']))}" + (f" s{samples}" if samples > 1 else "")


def _median(values: list) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def learn_seconds(rows: list, key: str, model_s: float, warm: bool = True) -> dict:
    """{"seconds", "basis", "cold_s", "cold_basis"} from measured rows (RenderTimes.rows(): newest
    first, each {"key", "model_s", "seconds", "cold"}) for a job of this key whose model estimate is
    model_s (rule above the function)."""
    usable = [r for r in rows if r["model_s"] > 0]
    warm_rows = [r for r in usable if not r["cold"]]
    same = [r for r in warm_rows if r["key"] == key][:LEARN_FROM]

    def ratio(rs):
        return _median([r["seconds"] / r["model_s"] for r in rs])

    if same:
        factor, n = ratio(same), len(same)
        basis = f"from {n} render{'s' if n > 1 else ''} on this machine"
    elif warm_rows:
        factor, n = ratio(warm_rows[:LEARN_FROM]), min(len(warm_rows), LEARN_FROM)
        basis = f"from {n} render{'s' if n > 1 else ''} on this machine, other sizes or passes"
    else:
        factor, basis = 1.0, "first guess: the render model, not yet measured on this machine"
    out = {"seconds": model_s * factor, "basis": basis, "cold_s": 0.0, "cold_basis": ""}
    if not warm:
        cold = [r for r in usable if r["cold"]][:LEARN_FROM]
        if cold:
            def warm_part(r):  # what the same render takes warm, by what is known now
                rs = [w for w in warm_rows if w["key"] == r["key"]][:LEARN_FROM] or warm_rows[:LEARN_FROM]
                return r["model_s"] * (ratio(rs) if rs else 1.0)

            out["cold_s"] = max(_median([r["seconds"] - warm_part(r) for r in cold]), 0.0)
            out["cold_basis"] = f"from {len(cold)} cold start{'s' if len(cold) > 1 else ''} on this machine"
        else:
            out["cold_s"], out["cold_basis"] = FIRST_GUESS_COLD_S, "first guess"
    return out


class RenderTimes:
    """This machine's measured render times, in the ledger's SQLite file (table render_times).
    Reading a file that does not exist yet gives no rows and creates nothing."""

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS render_times (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, "
               "images INTEGER NOT NULL, model_s REAL NOT NULL, seconds REAL NOT NULL, cold INTEGER NOT NULL, "
               "backend TEXT NOT NULL, recorded_at TEXT NOT NULL)")

    KEEP = 2000  # rows kept, the newest: the estimates read the latest LEARN_FROM of a kind

    def __init__(self, path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = _check_seconds("timeout_s", timeout_s)

    def record(self, key: str, images: int, model_s: float, seconds: float, cold: bool, backend: str = "local",
               now=None) -> None:
        """One render's measured seconds (LedgerError when the file cannot be written)."""
        seconds, model_s = _check_seconds("seconds", seconds), _check_seconds("model_s", model_s)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except (sqlite3.Error, OSError) as e:
            raise LedgerError(f"render times in {os.fspath(self.path)}: {type(e).__name__}: {e}. Set "
                              "budget.ledger_path in the config to a file on a local disk") from None
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            db.execute(self._SCHEMA)
            db.execute("INSERT INTO render_times (key, images, model_s, seconds, cold, backend, recorded_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (str(key), int(images), model_s, seconds, int(bool(cold)), backend, _utc(now).isoformat()))
            db.execute("DELETE FROM render_times WHERE id <= (SELECT MAX(id) FROM render_times) - ?", (self.KEEP,))
        except sqlite3.Error as e:
            raise LedgerError(f"render times in {os.fspath(self.path)}: {type(e).__name__}: {e}") from None
        finally:
            db.close()

    def rows(self, backend: str = "local", limit: int = 500) -> list[dict]:
        """The latest measured renders, newest first: key, images, model_s, seconds, cold, recorded_at."""
        if not self.path.is_file():
            return []
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout_s)
        except sqlite3.Error:
            return []
        try:
            found = db.execute("SELECT key, images, model_s, seconds, cold, recorded_at FROM render_times "
                               "WHERE backend = ? ORDER BY id DESC LIMIT ?", (backend, int(limit))).fetchall()
        except sqlite3.Error:  # no table yet (a ledger without renders), or a damaged file: nothing learned
            return []
        finally:
            db.close()
        return [{"key": k, "images": i, "model_s": m, "seconds": s, "cold": bool(c), "recorded_at": t}
                for k, i, m, s, c, t in found]


def describe_size(size: dict, seconds: float) -> str:
    """'48 images (4 views x 12 poses) at 512x512, 12.6 megapixels, 10 files per image, ~1 min to render'."""
    samples = f", shaded at {size['shaded_samples']} samples" if size["shaded_samples"] > 1 else ""
    return (f"{size['images']} images ({size['views']} views x {size['poses']} poses) at "
            f"{size['width']}x{size['height']}, {size['megapixels']:.1f} megapixels, {size['files_per_image']} "
            f"files per image{samples}, ~{_duration(seconds)} to render")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def check_job_limits(size: dict, seconds: float, limits: dict) -> None:
    """Refuses a job over the configured caps (settings ``limits``): SpecError naming the cap,
    the job's value and the cap's value."""
    from ..errors import SpecError

    desc = describe_size(size, seconds)
    for key, value, unit in (("max_images", size["images"], " images"),
                             ("max_megapixels", size["megapixels"], " megapixels"),
                             ("max_render_s", seconds, " s of estimated render time")):
        cap = limits[key]
        if value > cap:
            got = desc if key == "max_images" else f"{value:.0f}{unit} (the job: {desc})"
            raise SpecError(f"limits.{key}", f"got {got}",
                            f"at most {cap:g}{unit}: use fewer views, poses or pixels, or raise limits.{key} "
                            "in the config")


def _utc(now) -> datetime:
    """now as an aware UTC datetime; None is the current time, a naive datetime is taken as UTC."""
    if now is None:
        return datetime.now(timezone.utc)
    if not isinstance(now, datetime):
        raise ValueError(f"now: expected a datetime, got {now!r}")
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def _month(now) -> str:
    return _utc(now).strftime("%Y-%m")


def _micros(usd: float) -> int:
    return round(usd * _MICROS)


def _usd(micros) -> float:
    return (micros or 0) / _MICROS


_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    job_key         TEXT PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('reserved', 'settled')),
    estimate_micros INTEGER NOT NULL,
    cost_micros     INTEGER,          -- set when settled
    month           TEXT NOT NULL,    -- 'YYYY-MM' UTC: of the reservation, then of the settling
    reserved_at     TEXT NOT NULL,    -- ISO 8601 UTC
    settled_at      TEXT,
    details         TEXT              -- JSON
);
CREATE INDEX IF NOT EXISTS ledger_month ON ledger (month, state);
CREATE TABLE IF NOT EXISTS expired (  -- reservations released because they expired unsettled
    job_key         TEXT PRIMARY KEY,
    estimate_micros INTEGER NOT NULL,
    owner           TEXT,
    reserved_at     TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    released_at     TEXT NOT NULL
);
"""
_ADDED_COLUMNS = (("expires_at", "TEXT"), ("owner", "TEXT"))  # on ledgers made before expiry existed


def owner_identity() -> str:
    """This process as a reservation's owner: 'host pid N'."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class Ledger:
    """The monthly GPU budget in a SQLite file, shared by every process on this machine
    (ComfyUI, the CLI, several ComfyUI instances).

    Counting against the limit: costs settled in the current UTC calendar month plus every open
    reservation (a job that is running may settle this month, whenever it was reserved). A
    settled cost counts in the month it was settled.
    """

    # Test hook: seconds to sleep between the budget check and the write, to widen the window a
    # non-atomic reserve would lose in. Always 0 in use.
    _pause_after_check_s = 0.0

    def __init__(self, path, monthly_limit_usd=DEFAULT_MONTHLY_LIMIT_USD, timeout_s: float = 30.0):
        self.path = Path(path)
        self.monthly_limit_usd = _check_usd("monthly_limit_usd", monthly_limit_usd)
        self.timeout_s = _check_seconds("timeout_s", timeout_s)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._error(e) from None
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # two processes creating the same file at once
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            have = {r[1] for r in db.execute("PRAGMA table_info(ledger)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE ledger ADD COLUMN {name} {kind}")
            for key, reserved_at in db.execute("SELECT job_key, reserved_at FROM ledger WHERE state = "
                                               "'reserved' AND expires_at IS NULL").fetchall():
                expires = datetime.fromisoformat(reserved_at) + timedelta(seconds=DEFAULT_RESERVATION_S)
                db.execute("UPDATE ledger SET expires_at = ? WHERE job_key = ?", (expires.isoformat(), key))
            db.execute("COMMIT")

    def _error(self, e: Exception) -> LedgerError:
        return LedgerError(f"budget ledger {os.fspath(self.path)}: {type(e).__name__}: {e}. Set "
                           "budget.ledger_path in the config to a file on a local disk with free space")

    @contextmanager
    def _connect(self):
        # One short-lived connection per call: safe across threads (ComfyUI's server and
        # executor threads) and across fork/spawn, and closing it releases the file on Windows.
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except (sqlite3.Error, OSError) as e:
            raise self._error(e) from None
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
            # FULL: a settled cost survives a power cut (NORMAL in WAL may lose the last commits)
            db.execute("PRAGMA synchronous = FULL")
            yield db  # an error before COMMIT: close() rolls the transaction back
        except sqlite3.Error as e:  # a full disk, a damaged file, a folder in the file's place
            raise self._error(e) from None
        finally:
            db.close()

    def reserve(self, job_key: str, estimate_usd, now=None, expires_in_s=DEFAULT_RESERVATION_S) -> None:
        """Records a reservation of estimate_usd for job_key, owned by this process and expiring
        expires_in_s after now (the job's timeout plus a margin), or raises BudgetExceeded when
        this month's spend + open reservations + the estimate would exceed the monthly limit.
        Expired reservations are released first. Check and write are one transaction:
        concurrent reservations cannot both squeeze in."""
        job_key = _check_job_key(job_key)
        estimate = _micros(_check_usd("estimate_usd", estimate_usd))
        expires_in_s = _check_seconds("expires_in_s", expires_in_s)
        at = _utc(now)
        month = _month(at)
        limit = _micros(self.monthly_limit_usd)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock before reading the totals
            row = db.execute("SELECT state FROM ledger WHERE job_key = ?", (job_key,)).fetchone()
            if row:
                raise ValueError(f"job_key {job_key!r} is already in the ledger ({row[0]}); "
                                 f"each job needs its own key")
            released = self._release_expired(db, at)
            committed = self._committed(db, month)
            if self._pause_after_check_s:
                time.sleep(self._pause_after_check_s)
            if committed + estimate > limit:
                db.execute("COMMIT")  # the expired ones stay released
                _log_released(released)
                raise BudgetExceeded(_usd(committed), _usd(estimate), _usd(limit), month)
            db.execute("INSERT INTO ledger (job_key, state, estimate_micros, month, reserved_at, expires_at, owner) "
                       "VALUES (?, 'reserved', ?, ?, ?, ?, ?)",
                       (job_key, estimate, month, at.isoformat(),
                        (at + timedelta(seconds=expires_in_s)).isoformat(), owner_identity()))
            db.execute("COMMIT")
        _log_released(released)

    def release_expired(self, now=None) -> list[dict]:
        """Releases (and logs) every reservation whose expiry is before now; returns them."""
        at = _utc(now)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            released = self._release_expired(db, at)
            db.execute("COMMIT")
        _log_released(released)
        return released

    @staticmethod
    def _release_expired(db, at: datetime) -> list[dict]:
        rows = db.execute("SELECT job_key, estimate_micros, owner, reserved_at, expires_at FROM ledger "
                          "WHERE state = 'reserved' AND expires_at IS NOT NULL").fetchall()
        out = []
        for key, micros, owner, reserved_at, expires_at in rows:
            if datetime.fromisoformat(expires_at) > at:
                continue
            db.execute("DELETE FROM ledger WHERE job_key = ?", (key,))
            db.execute("INSERT OR REPLACE INTO expired (job_key, estimate_micros, owner, reserved_at, expires_at, "
                       "released_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (key, micros, owner, reserved_at, expires_at, at.isoformat()))
            out.append({"job_key": key, "estimate_usd": _usd(micros), "owner": owner, "reserved_at": reserved_at,
                        "expires_at": expires_at, "released_at": at.isoformat()})
        return out

    def reservations(self) -> list[dict]:
        """Open reservations, oldest first: job_key, estimate_usd, owner, reserved_at, expires_at."""
        with self._connect() as db:
            rows = db.execute("SELECT job_key, estimate_micros, owner, reserved_at, expires_at FROM ledger "
                              "WHERE state = 'reserved' ORDER BY reserved_at, rowid").fetchall()
        return [{"job_key": k, "estimate_usd": _usd(e), "owner": o, "reserved_at": r, "expires_at": x}
                for k, e, o, r, x in rows]

    def expired(self) -> list[dict]:
        """Reservations released because they expired unsettled, latest first."""
        with self._connect() as db:
            rows = db.execute("SELECT job_key, estimate_micros, owner, reserved_at, expires_at, released_at "
                              "FROM expired ORDER BY released_at DESC").fetchall()
        return [{"job_key": k, "estimate_usd": _usd(e), "owner": o, "reserved_at": r, "expires_at": x,
                 "released_at": t} for k, e, o, r, x, t in rows]

    def settle(self, job_key: str, actual_usd, details: dict | None = None, now=None) -> None:
        """Turns job_key's reservation into a recorded cost of actual_usd (counted in the month of
        ``now``), with details (JSON-able: RunPod id, delay/execution ms, GPU class…). Recorded
        even when it overshoots the budget: the money is spent."""
        job_key = _check_job_key(job_key)
        cost = _micros(_check_usd("actual_usd", actual_usd))
        if details is None:
            details = {}
        if not isinstance(details, dict):
            raise ValueError(f"details: expected a dict, got {type(details).__name__}")
        try:
            details_json = json.dumps(details, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"details: must be JSON-serialisable without NaN/inf ({e})") from None
        at = _utc(now)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            late = db.execute("SELECT estimate_micros, reserved_at FROM expired WHERE job_key = ?",
                              (job_key,)).fetchone()
            if late and not db.execute("SELECT 1 FROM ledger WHERE job_key = ?", (job_key,)).fetchone():
                # its reservation expired and was released; the job ran after all: record the cost
                db.execute("DELETE FROM expired WHERE job_key = ?", (job_key,))
                db.execute("INSERT INTO ledger (job_key, state, estimate_micros, month, reserved_at) "
                           "VALUES (?, 'reserved', ?, ?, ?)", (job_key, late[0], _month(at), late[1]))
            self._require_reserved(db, job_key, "settle")
            db.execute("UPDATE ledger SET state = 'settled', cost_micros = ?, month = ?, "
                       "settled_at = ?, details = ? WHERE job_key = ?",
                       (cost, _month(at), at.isoformat(), details_json, job_key))
            db.execute("COMMIT")

    def release(self, job_key: str) -> None:
        """Drops job_key's reservation: the job was refused, failed to submit, or never ran."""
        job_key = _check_job_key(job_key)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("DELETE FROM expired WHERE job_key = ?", (job_key,)).rowcount:
                db.execute("COMMIT")  # already released when it expired
                return
            self._require_reserved(db, job_key, "release")
            db.execute("DELETE FROM ledger WHERE job_key = ?", (job_key,))
            db.execute("COMMIT")

    def spent_this_month(self, now=None) -> float:
        """USD settled in the current UTC calendar month (open reservations not included)."""
        with self._connect() as db:
            (micros,) = db.execute("SELECT SUM(cost_micros) FROM ledger WHERE state = 'settled' "
                                   "AND month = ?", (_month(now),)).fetchone()
        return _usd(micros)

    def reserved_usd(self) -> float:
        """USD held by open reservations (jobs reserved, not yet settled or released)."""
        with self._connect() as db:
            (micros,) = db.execute("SELECT SUM(estimate_micros) FROM ledger "
                                   "WHERE state = 'reserved'").fetchone()
        return _usd(micros)

    def remaining_usd(self, now=None) -> float:
        """What a new reservation may still take this month."""
        with self._connect() as db:
            committed = self._committed(db, _month(now))
        return max(_usd(_micros(self.monthly_limit_usd) - committed), 0.0)

    def entries(self, month: str | None = None) -> list[dict]:
        """Ledger rows, oldest reservation first: every row, or those of month "YYYY-MM"."""
        if month is not None:
            try:
                ok = isinstance(month, str) and datetime.strptime(month, "%Y-%m").strftime("%Y-%m") == month
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"month: expected 'YYYY-MM' like '2026-11', got {month!r}")
        sql = ("SELECT job_key, state, estimate_micros, cost_micros, month, reserved_at, "
               "settled_at, details FROM ledger")
        with self._connect() as db:
            if month is None:
                rows = db.execute(sql + " ORDER BY reserved_at, rowid").fetchall()
            else:
                rows = db.execute(sql + " WHERE month = ? ORDER BY reserved_at, rowid", (month,)).fetchall()
        return [{"job_key": k, "state": s, "estimate_usd": _usd(e),
                 "cost_usd": None if c is None else _usd(c), "month": m, "reserved_at": r,
                 "settled_at": t, "details": json.loads(d) if d else None}
                for k, s, e, c, m, r, t, d in rows]

    @staticmethod
    def _committed(db, month: str) -> int:
        """Micro-dollars counting against month's limit: its settled costs + all open reservations."""
        (micros,) = db.execute(
            "SELECT COALESCE(SUM(CASE WHEN state = 'settled' AND month = ? THEN cost_micros "
            "WHEN state = 'reserved' THEN estimate_micros ELSE 0 END), 0) FROM ledger",
            (month,)).fetchone()
        return micros

    @staticmethod
    def _require_reserved(db, job_key: str, action: str) -> None:
        row = db.execute("SELECT state FROM ledger WHERE job_key = ?", (job_key,)).fetchone()
        if row is None:
            raise ValueError(f"cannot {action} job_key {job_key!r}: no reservation in the ledger")
        if row[0] != "reserved":
            raise ValueError(f"cannot {action} job_key {job_key!r}: it is already {row[0]}")

    def __repr__(self) -> str:
        return f"Ledger({os.fspath(self.path)!r}, monthly_limit_usd={self.monthly_limit_usd})"


def _log_released(released: list) -> None:
    for r in released:
        log.warning("budget: released the expired reservation %s ($%.4f, owner %s, reserved %s, expired %s): "
                    "its client never settled it (killed?)", r["job_key"], r["estimate_usd"], r["owner"] or "unknown",
                    r["reserved_at"], r["expires_at"])
