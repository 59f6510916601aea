"""Units sized by time (jobs/units.UnitPlan): a small first unit measures the rate, the next
ones hold what fits in the target, growing at most 4x a unit, capped by the step's rows;
without a target every unit holds the step's rows, as before."""
from __future__ import annotations

from realsyn.jobs.core.units import MAX_BUCKETS, UnitPlan


def cut(plan: UnitPlan, seconds_per_row: float) -> list[int]:
    """Rows per unit when every row costs seconds_per_row (bucket counts turned back into rows)."""
    out, lo, rows = [], 0, plan.first()
    while lo < plan.buckets:
        hi = min(plan.buckets, lo + plan.width(rows))
        got = plan.pending * (hi - lo) / plan.buckets
        out.append(round(got))
        lo, rows = hi, plan.next_rows(got, got * seconds_per_row)
    return out


def test_fixed_units_without_a_target():
    assert cut(UnitPlan(45, 10), 1.0) == [10, 10, 10, 10, 5]
    assert cut(UnitPlan(7, 200_000), 1.0) == [7]


def test_a_slow_step_gets_units_of_about_the_target():
    # 1,664 URLs at 0.3 s each with 8 in flight (about 0.04 s a URL), first unit 32 rows.
    units = cut(UnitPlan(1664, 200_000, first_rows=32, target_s=20), 0.3 / 8)
    assert units[0] == 32 and units[1] == 128                    # grows at most 4x a unit
    assert all(n * 0.3 / 8 <= 20 * 1.01 for n in units)          # no unit longer than the target
    assert sum(units) == 1664 and len(units) < 10


def test_a_fast_step_grows_to_its_cap_and_a_slow_one_stays_at_the_floor():
    fast = cut(UnitPlan(10_000_000, 200_000, first_rows=32, target_s=60), 1e-6)
    # a unit is a run of whole buckets (10M rows in 65,536: about 153 rows each)
    assert fast[:3] == [153, 610, 2441] and abs(max(fast) - 200_000) <= 153
    assert abs(sum(fast) - 10_000_000) <= len(fast)   # rows rounded per unit
    slow = cut(UnitPlan(1000, 200_000, first_rows=32, target_s=60), 10.0)
    assert set(slow[:-1]) == {32}                                  # the floor: a few rows per task slot


def test_the_cap_wins_over_the_first_rows_and_buckets_are_bounded():
    assert cut(UnitPlan(100, 20, first_rows=32, target_s=60), 0.001) == [20] * 5
    assert UnitPlan(10**9, 10**6).buckets == MAX_BUCKETS
    assert UnitPlan(0, 10).buckets == 1
