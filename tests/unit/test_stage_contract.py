import pytest

from realsyn.jobs.core.stage import Ledger, LedgerError


def test_balanced_ledger_passes():
    Ledger("docs", 10, 7, {"a": 2, "b": 1}).check("s")


def test_unbalanced_ledger_fails_with_numbers():
    with pytest.raises(LedgerError, match="in=10 kept=7 rejected=2"):
        Ledger("docs", 10, 7, {"a": 2}).check("s")


def test_ledger_metrics_and_line():
    led = Ledger("docs", 3, 2, {"bad": 1})
    assert led.metrics()["docs.rejected.bad"] == 1
    assert "in=3 kept=2 rejected=1 (bad=1)" in led.line()
