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
