"""Whether a stage runs and why, from its last finished run (pure: no Spark). The runner and
`--plan` both take this decision."""
from realsyn.jobs.core.stage import decide

INPUTS = {"bronze.documents": 3}
OUTPUTS = {"silver.images": 5}


def last(fingerprint="f1", config_hash="c1", inputs=INPUTS, outputs=OUTPUTS):
    return {"fingerprint": fingerprint, "config_hash": config_hash, "input_versions": dict(inputs),
            "output_versions": dict(outputs)}


def test_unchanged_stage_is_skipped():
    assert decide(last(), "f1", "c1", INPUTS, OUTPUTS) == (False, "inputs, config and code unchanged")


def test_first_run_and_forced_runs_say_so():
    assert decide(None, "f1", "c1", INPUTS, OUTPUTS) == (True, "no finished run yet")
    assert decide(last(), "f1", "c1", INPUTS, OUTPUTS, force="--force") == (True, "--force")


def test_new_input_versions_are_named():
    runs, why = decide(last(), "f2", "c1", {"bronze.documents": 4}, OUTPUTS)
    assert runs and why == "bronze.documents v3 -> v4"


def test_changed_parameters_are_named_beside_inputs():
    runs, why = decide(last(), "f2", "c2", {"bronze.documents": 4}, OUTPUTS)
    assert runs and why == "bronze.documents v3 -> v4; its parameters changed"


def test_same_inputs_and_parameters_with_another_fingerprint_is_code_weights_or_files():
    runs, why = decide(last(), "f2", "c1", INPUTS, OUTPUTS)
    assert runs and why == "its code, model weights or input files changed"


def test_an_output_rewritten_by_someone_else_reruns_the_stage():
    runs, why = decide(last(), "f1", "c1", INPUTS, {"silver.images": 6})
    assert runs and why == "silver.images changed since its last run"
