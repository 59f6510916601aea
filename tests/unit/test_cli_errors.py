"""How the CLI turns failures into one clear line."""
from realsyn.jobs.cli import delta_conflict


def test_delta_conflict_found_in_the_cause_chain():
    inner = RuntimeError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added to the root "
                         "of the table by a concurrent update.\n\tat io.delta...")
    try:
        try:
            raise inner
        except RuntimeError as e:
            raise ValueError("write failed") from e
    except ValueError as outer:
        assert delta_conflict(outer).startswith("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException")


def test_other_errors_are_not_conflicts():
    assert delta_conflict(RuntimeError("disk full")) == ""
    assert delta_conflict(KeyError("concurrent")) == ""


def test_a_full_disk_is_one_line_wherever_it_is_raised(capsys):
    import errno

    from realsyn.jobs.cli import _report, no_space
    py = OSError(errno.ENOSPC, "No space left on device", "/data/export/.staging/part-0.parquet")
    assert no_space(py) == "/data/export/.staging/part-0.parquet"
    java = RuntimeError("An error occurred while calling o123.save.\n: org.apache.spark.SparkException: Job aborted."
                        "\nCaused by: java.io.IOException: No space left on device\n\tat java.io.FileOutputStream")
    try:
        try:
            raise java
        except RuntimeError as e:
            raise ValueError("export failed") from e
    except ValueError as outer:
        assert no_space(outer) == "Caused by: java.io.IOException: No space left on device"
        assert _report(outer) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realsyn: error: no space left on the device")
    assert no_space(RuntimeError("disk full?")) == "" and no_space(OSError(errno.EACCES, "denied")) == ""


def test_every_failure_a_user_can_fix_is_one_line_through_one_base(capsys):
    from realsyn.jobs.cli import _report
    from realsyn.jobs.core.config import ConfigError
    from realsyn.jobs.core.errors import UserError
    from realsyn.jobs.core.models import MissingWeights
    from realsyn.jobs.core.session import SparkSetupError
    from realsyn.jobs.core.stage import InputError, LedgerError
    from realsyn.jobs.core.tables import MissingTable
    from realsyn.schemas import SchemaMismatch
    for cls in (ConfigError, InputError, MissingWeights, MissingTable, SchemaMismatch, LedgerError, SparkSetupError):
        assert issubclass(cls, UserError), cls
        assert _report(cls(f"{cls.__name__}: retrieval.top_k in conf/x.yaml")) == 2
        err = capsys.readouterr().err
        assert err == f"realsyn: error: {cls.__name__}: retrieval.top_k in conf/x.yaml\n"
    try:
        raise KeyError("a bug")
    except KeyError as bug:
        assert _report(bug) == 1                    # anything else keeps its traceback
    assert "Traceback" in capsys.readouterr().err
