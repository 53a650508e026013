"""The GPU cost estimate and the budget ledger, including real concurrent processes."""
import math
import multiprocessing
import pickle
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from pose_factory.jobs import budget
from pose_factory.jobs.budget import BudgetExceeded, Ledger, estimate_cost, estimate_from_status

UTC = timezone.utc
NOV = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
SPAWN = multiprocessing.get_context("spawn")  # the same start method on Linux, macOS and Windows


# --- estimates ---------------------------------------------------------------------------------

def test_prices_match_design():
    assert budget.PRICES_PER_SECOND == {"16gb": 0.00016, "24gb": 0.00019, "48gb": 0.00034,
                                        "a100": 0.00076, "h100": 0.00116}


def test_estimate_sums_execution_startup_and_idle():
    # 60 s execution + 20 s start-up (delay 20 < 30 allowance) + 5 s idle on a 24 GB worker
    assert estimate_cost(60, 20, "24gb", 5) == pytest.approx(85 * 0.00019)
    # delay includes queue wait, which is not billed: start-up is capped at startup_s
    assert estimate_cost(60, 500, "24gb", 5, startup_s=30) == pytest.approx(95 * 0.00019)
    # before the job runs (no delay known) a full cold start is counted
    assert estimate_cost(60, None, "h100", 5, startup_s=10) == pytest.approx(75 * 0.00116)
    assert estimate_cost(0, 0, "16gb", 0) == 0.0
    assert estimate_cost(1, 0, "A100", 0) == pytest.approx(0.00076)  # class names case-insensitive


def test_estimate_from_status_reads_milliseconds():
    status = {"id": "abc-1", "status": "COMPLETED", "delayTime": 12_000, "executionTime": 45_500}
    usd, details = estimate_from_status(status, "48gb", idle_timeout_s=5, startup_s=30)
    assert usd == pytest.approx((45.5 + 12 + 5) * 0.00034)
    assert details["runpod_id"] == "abc-1" and details["execution_ms"] == 45_500
    assert details["delay_ms"] == 12_000 and details["gpu_class"] == "48gb"
    usd, _ = estimate_from_status({"status": "CANCELLED"}, "24gb", idle_timeout_s=5, startup_s=30)
    assert usd == pytest.approx(5 * 0.00019)  # cancelled in the queue: idle allowance only


@pytest.mark.parametrize("kwargs, word", [
    (dict(execution_s=-1), "execution_s"),
    (dict(execution_s=math.nan), "execution_s"),
    (dict(execution_s=math.inf), "execution_s"),
    (dict(execution_s="60"), "execution_s"),
    (dict(execution_s=True), "execution_s"),
    (dict(delay_s=-0.5), "delay_s"),
    (dict(idle_timeout_s=math.nan), "idle_timeout_s"),
    (dict(startup_s=-3), "startup_s"),
    (dict(gpu_class="rtx4090"), "allowed: 16gb, 24gb, 48gb, a100, h100"),
    (dict(gpu_class=None), "gpu_class"),
])
def test_estimate_rejects_bad_inputs(kwargs, word):
    args = dict(execution_s=10, delay_s=1, gpu_class="24gb", idle_timeout_s=5) | kwargs
    with pytest.raises(ValueError, match=word):
        estimate_cost(**args)


# --- ledger: reserve / settle / release ---------------------------------------------------------

def test_reserve_settle_release_and_totals(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite", monthly_limit_usd=10)
    led.reserve("job-a", 3.0, now=NOV)
    led.reserve("job-b", 2.5, now=NOV)
    assert led.spent_this_month(now=NOV) == 0.0
    assert led.reserved_usd() == pytest.approx(5.5)
    assert led.remaining_usd(now=NOV) == pytest.approx(4.5)

    led.settle("job-a", 2.25, {"runpod_id": "r1", "execution_ms": 1234}, now=NOV)
    led.release("job-b")
    assert led.spent_this_month(now=NOV) == pytest.approx(2.25)
    assert led.reserved_usd() == 0.0
    assert led.remaining_usd(now=NOV) == pytest.approx(7.75)

    (row,) = led.entries()
    assert row["job_key"] == "job-a" and row["state"] == "settled"
    assert row["estimate_usd"] == pytest.approx(3.0) and row["cost_usd"] == pytest.approx(2.25)
    assert row["details"] == {"runpod_id": "r1", "execution_ms": 1234}
    assert row["month"] == "2026-11"

    # the same file opened again (another process would) sees the same ledger
    again = Ledger(tmp_path / "ledger.sqlite", monthly_limit_usd=10)
    assert again.spent_this_month(now=NOV) == pytest.approx(2.25)
    mode = sqlite3.connect(tmp_path / "ledger.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_budget_exceeded_message_and_limit_is_inclusive(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")  # default $80
    led.reserve("past", 78.0, now=NOV)
    led.settle("past", 78.0, now=NOV)
    led.reserve("running", 1.10, now=NOV)
    with pytest.raises(BudgetExceeded) as e:
        led.reserve("new", 1.20, now=NOV)
    msg = str(e.value)
    assert msg.startswith("monthly GPU budget: $79.10 spent or reserved of $80.00")
    assert "this job's estimate $1.20 would exceed it" in msg
    assert isinstance(e.value, RuntimeError)
    assert (e.value.committed_usd, e.value.estimate_usd, e.value.limit_usd) == (79.10, 1.20, 80.0)
    assert str(pickle.loads(pickle.dumps(e.value))) == msg  # crosses process boundaries intact
    assert [r["job_key"] for r in led.entries()] == ["past", "running"]  # refused job not recorded
    led.reserve("exact", 0.90, now=NOV)  # reaching the limit exactly is allowed
    with pytest.raises(BudgetExceeded):
        led.reserve("cent", 0.01, now=NOV)
    led.reserve("free", 0.0, now=NOV)  # nothing to pay fits even a full budget


def test_settle_may_overshoot_the_budget(tmp_path):
    led = Ledger(tmp_path / "l.sqlite", monthly_limit_usd=1)
    led.reserve("j", 0.9, now=NOV)
    led.settle("j", 1.4, {}, now=NOV)  # the money is spent: record the truth
    assert led.spent_this_month(now=NOV) == pytest.approx(1.4)
    assert led.remaining_usd(now=NOV) == 0.0
    with pytest.raises(BudgetExceeded, match=r"\$1\.40 spent or reserved of \$1\.00"):
        led.reserve("k", 0.01, now=NOV)


def test_ledger_rejects_bad_inputs(tmp_path):
    led = Ledger(tmp_path / "l.sqlite", monthly_limit_usd=10)
    for key in ("", "   ", None, 7):
        with pytest.raises(ValueError, match="job_key"):
            led.reserve(key, 1.0)
    for bad in (-0.01, math.nan, math.inf, "1.0", None, True):
        with pytest.raises(ValueError, match="estimate_usd"):
            led.reserve("j", bad)
    led.reserve("j", 1.0)
    with pytest.raises(ValueError, match="already in the ledger"):
        led.reserve("j", 1.0)
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match="actual_usd"):
            led.settle("j", bad, {})
    with pytest.raises(ValueError, match="details"):
        led.settle("j", 1.0, ["not", "a", "dict"])
    with pytest.raises(ValueError, match="details"):
        led.settle("j", 1.0, {"x": math.nan})
    with pytest.raises(ValueError, match="details"):
        led.settle("j", 1.0, {"x": object()})
    with pytest.raises(ValueError, match="no reservation"):
        led.settle("missing", 1.0, {})
    with pytest.raises(ValueError, match="no reservation"):
        led.release("missing")
    with pytest.raises(ValueError, match="now"):
        led.reserve("k", 1.0, now="2026-11-01")
    led.settle("j", 1.0, {})
    with pytest.raises(ValueError, match="already settled"):
        led.settle("j", 1.0, {})
    with pytest.raises(ValueError, match="already settled"):
        led.release("j")
    assert [r["state"] for r in led.entries()] == ["settled"]  # failed calls changed nothing
    for month in ("2026-13", "2026-1", "Nov 2026", 202611):
        with pytest.raises(ValueError, match="YYYY-MM"):
            led.entries(month)
    for limit in (-1, math.nan, math.inf, "80"):
        with pytest.raises(ValueError, match="monthly_limit_usd"):
            Ledger(tmp_path / "other.sqlite", monthly_limit_usd=limit)


# --- month boundaries (UTC calendar months) -----------------------------------------------------

def test_month_boundaries_are_utc(tmp_path):
    led = Ledger(tmp_path / "l.sqlite", monthly_limit_usd=5)
    last_oct = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
    first_nov = datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC)
    led.reserve("oct", 4.0, now=last_oct)
    led.settle("oct", 4.0, {}, now=last_oct)
    assert led.spent_this_month(now=last_oct) == pytest.approx(4.0)
    assert led.spent_this_month(now=first_nov) == 0.0  # a new month starts from zero
    with pytest.raises(BudgetExceeded):
        led.reserve("late-oct", 1.5, now=last_oct)
    led.reserve("nov", 4.5, now=first_nov)  # fits in November's fresh budget
    led.settle("nov", 4.5, {}, now=first_nov)

    # 00:30 at UTC+01:00 on 1 November is still 31 October in UTC
    berlin = timezone(timedelta(hours=1))
    led.reserve("tz", 0.5, now=datetime(2026, 11, 1, 0, 30, tzinfo=berlin))
    led.settle("tz", 0.5, {}, now=datetime(2026, 11, 1, 0, 30, tzinfo=berlin))
    assert led.spent_this_month(now=last_oct) == pytest.approx(4.5)
    # a naive datetime is taken as UTC
    assert led.spent_this_month(now=datetime(2026, 10, 31, 12, 0)) == pytest.approx(4.5)

    assert [r["job_key"] for r in led.entries("2026-10")] == ["tz", "oct"]  # by time
    assert [r["job_key"] for r in led.entries("2026-11")] == ["nov"]
    assert len(led.entries()) == 3


def test_open_reservation_from_last_month_still_counts_and_settles_in_this_month(tmp_path):
    led = Ledger(tmp_path / "l.sqlite", monthly_limit_usd=5)
    dec31 = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    jan1 = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    led.reserve("straddle", 3.0, now=dec31)  # still running at midnight
    with pytest.raises(BudgetExceeded, match=r"\$3\.00 spent or reserved of \$5\.00 in 2027-01"):
        led.reserve("jan", 2.5, now=jan1)
    led.settle("straddle", 2.0, {}, now=jan1)
    assert led.spent_this_month(now=dec31) == 0.0
    assert led.spent_this_month(now=jan1) == pytest.approx(2.0)
    assert [r["job_key"] for r in led.entries("2027-01")] == ["straddle"]


# --- concurrency with real processes -----------------------------------------------------------

def _run_together(target, argsets, timeout_s=120):
    """Starts one spawned process per argument tuple and waits for all; returns exit codes.
    Daemons, and killed if still running at the end, so a hung child can never hang pytest."""
    procs = [SPAWN.Process(target=target, args=args, daemon=True) for args in argsets]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout_s)
        return [p.exitcode for p in procs]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(10)


def _writer(path, name, n, barrier):
    led = Ledger(path, monthly_limit_usd=1_000_000)  # both create the schema at once
    barrier.wait(timeout=60)
    for i in range(n):
        key = f"{name}-{i}"
        led.reserve(key, 0.001)
        led.settle(key, 0.000123, {"writer": name, "i": i})


def test_two_writer_processes_lose_no_entry(tmp_path):
    path, n = tmp_path / "ledger.sqlite", 150
    barrier = SPAWN.Barrier(2)
    codes = _run_together(_writer, [(path, name, n, barrier) for name in ("a", "b")])
    assert codes == [0, 0]
    rows = Ledger(path).entries()
    assert len(rows) == 2 * n
    assert {r["job_key"] for r in rows} == {f"{w}-{i}" for w in "ab" for i in range(n)}
    assert all(r["state"] == "settled" for r in rows)
    assert sum(round(r["cost_usd"] * 1e6) for r in rows) == 2 * n * 123  # exact, no lost update
    # the two writers really interleaved: neither wrote all its entries before the other began
    order = [r["job_key"][0] for r in rows]
    assert order.index("b") < n and order.index("a") < n


def _racer(path, name, rounds, barrier, results, pause_s):
    Ledger._pause_after_check_s = pause_s  # widens the check-then-write window
    led = Ledger(path, monthly_limit_usd=80)
    try:
        for r in range(rounds):
            key = f"r{r}-{name}"
            barrier.wait(timeout=60)  # both reserve at the same moment
            try:
                led.reserve(key, 1.0)
                outcome = "reserved"
            except BudgetExceeded:
                outcome = "refused"
            results.put((r, name, outcome))
            barrier.wait(timeout=60)  # both have tried
            if outcome == "reserved":
                led.release(key)  # restore the $1.50 left for the next round
            barrier.wait(timeout=60)
    except BaseException as e:  # report it and free the other racer instead of leaving it waiting
        results.put((-1, name, repr(e)))
        barrier.abort()
        raise


@pytest.mark.parametrize("pause_s", [0.0, 0.05])
def test_over_budget_race_refuses_exactly_one(tmp_path, pause_s):
    path, rounds = tmp_path / "ledger.sqlite", 8
    led = Ledger(path, monthly_limit_usd=80)
    led.reserve("earlier", 78.5)
    led.settle("earlier", 78.5, {})  # $1.50 left: one $1.00 job fits, two do not
    barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
    codes = _run_together(_racer, [(path, name, rounds, barrier, results, pause_s)
                                   for name in ("a", "b")])
    got = []
    while not results.empty() or len(got) < 2 * rounds:
        try:
            got.append(results.get(timeout=5))
        except Exception:  # queue.Empty: a racer died early; the asserts below say how
            break
    assert codes == [0, 0], got
    for r in range(rounds):
        outcomes = sorted(o for rr, _, o in got if rr == r)
        assert outcomes == ["refused", "reserved"], f"round {r}: {got}"
    assert led.spent_this_month() == pytest.approx(78.5)
    assert led.reserved_usd() == 0.0
