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


def test_a_moved_lakehouse_gives_every_stage_the_same_decisive_parameters(tmp_path):
    """Moving the work dir (tables, export folder and all) reruns no stage; pointing the
    export at a folder of its own does rerun export, whose files are not there yet."""
    from realsyn.jobs.core.config import load_config
    from realsyn.jobs.core.decisive import decisive
    from realsyn.jobs.pipeline import all_stages
    from tests.conftest import SAMPLE_CONF

    def forms(*sets):
        cfg = load_config("local", [SAMPLE_CONF], list(sets))
        return {s.name: decisive(s.Params.from_config(cfg)) for s in all_stages()}

    here = forms(f"run.work_dir={tmp_path / 'lake'}")
    assert forms(f"run.work_dir={tmp_path / 'moved' / 'lake'}") == here
    elsewhere = forms(f"run.work_dir={tmp_path / 'lake'}", f"export.dir={tmp_path / 'release'}")
    assert [name for name in here if elsewhere[name] != here[name]] == ["export"]
