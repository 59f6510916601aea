"""Every config key a stage reads during a real run changes its fingerprint; no other key does.

The reads are recorded while sample_pipeline runs the whole pipeline on the sample (see
conftest: every Config.get / section / flat / hash is attributed to the running stage).
Each key of the resolved config is then changed on its own to another value of its type,
and the stage's fingerprint is computed from the parameters it would declare. The keys
under `resources.` and `units.` are read to schedule a stage's tasks (its declared
TaskResources) and size its commits; they change nothing it writes and must never change a
fingerprint.
"""
from __future__ import annotations

import copy

from realsyn.jobs.core.config import RULES, Config
from realsyn.jobs.pipeline import all_stages
from tests.conftest import leaf_keys

# Task resources (jobs/core/resources.py) and unit sizes (jobs/core/units.py): read by the runner to
# schedule and commit a stage's work, never fingerprinted.
SCHEDULING = ("resources.", "units.")
# Locations (udfs/locations.py): what is there is fingerprinted by content (the input files'
# hashes, the weights' hashes), so another path to the same bytes changes nothing.
# tests/e2e/test_rerun_reuse.py moves both and counts the rows recomputed. The work dir holds
# the tables, which every stage identifies by version (tests/e2e/test_faults.py reruns a copy).
BY_CONTENT = ("run.input", "run.work_dir")


def changed_value(dotted: str, value):
    """Another value of the same type (another choice where the key has a list of them)."""
    rule = RULES.get(dotted)
    if rule and rule[0] == "choice":
        return sorted((c for c in rule[1] if c != value), key=str)[0]   # choices may mix types
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.125
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, list):
        return value[:-1] if value else ["changed"]
    if isinstance(value, dict):
        return {"changed": "1"}
    return "changed"


def with_key_changed(cfg: Config, path: tuple[str, ...]) -> Config:
    data = copy.deepcopy(cfg.data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = changed_value(".".join(path), node[path[-1]])
    return Config(data, dict(cfg.sources), cfg.profile)


def fingerprint(stage, cfg: Config) -> str:
    return stage.fingerprint(stage.Params.from_config(cfg), {}, {}, {})


def test_each_key_a_stage_reads_changes_its_fingerprint_and_no_other_key_does(sample_pipeline, config_reads):
    cfg, result, _ = sample_pipeline
    assert all(not o.skipped for o in result.outcomes)
    keys = [p for p in leaf_keys(cfg.data)]
    wrong = []
    for stage in all_stages():
        reads = config_reads.get(stage.name, set())
        assert reads, f"{stage.name} read no config key during its run"
        assert reads <= {".".join(p) for p in keys}
        base = fingerprint(stage, cfg)
        for path in keys:
            dotted = ".".join(path)
            changed = fingerprint(stage, with_key_changed(cfg, path)) != base
            if changed != (dotted in reads and not dotted.startswith(SCHEDULING) and dotted not in BY_CONTENT):
                wrong.append(f"{stage.name}: {dotted} ({'read' if dotted in reads else 'not read'}, "
                             f"fingerprint {'changed' if changed else 'unchanged'})")
    assert not wrong, "\n".join(wrong)


def test_the_model_stages_resources_come_from_config_and_stay_out_of_the_fingerprint(sample_pipeline, config_reads):
    """The GPU share of each model stage was read during its run (its declared resources
    resolved), and by the first test above it changed no fingerprint."""
    for stage, key in (("embed", "resources.clip_task_gpus"), ("balance", "resources.clip_task_gpus"),
                       ("generate", "resources.generation_task_gpus")):
        assert {key, "resources.stage_level_scheduling"} <= config_reads[stage], stage


def test_keys_outside_a_stages_sections_are_recorded(sample_pipeline, config_reads):
    """The two gaps of the old section-based hash: semantic dedup's scores (once inside embed)
    and balance read the k-means keys of the retrieval section."""
    for stage in ("semantic_neighbours", "balance"):
        assert {"kmeans.sample", "kmeans.iters"} <= config_reads[stage]
    assert config_reads.get(None), "the runner's own reads (session, tables, tracking) were not recorded"


def test_every_table_a_stage_reads_is_declared(sample_pipeline, table_reads):
    from realsyn.jobs.core.stage import RUNS_TABLE
    for stage in all_stages():
        allowed = set(stage.inputs) | set(stage.outputs) | ({RUNS_TABLE} if stage.reads_run_records else set())
        read = table_reads.get(stage.name, set())
        assert read, f"{stage.name} read no table"
        assert read <= allowed, f"{stage.name} read undeclared {sorted(read - allowed)}"
    # export's card counts every pipeline table: all of them are declared, and all were read
    export = next(s for s in all_stages() if s.name == "export")
    assert set(export.inputs) <= table_reads["export"]


def test_a_dedup_threshold_reaches_only_the_filter_stage(sample_pipeline, config_reads):
    """Changing a semantic dedup threshold reruns semantic_dedup (and what reads its tables),
    never the scores or the embedding."""
    for key in ("images.semantic_dedup_cosine", "sentences.semantic_dedup_cosine"):
        # (None: the runner's own reads, e.g. the run record's config, are no stage's)
        assert {s for s, keys in config_reads.items() if key in keys and s is not None} == {"semantic_dedup"}


def test_every_key_of_the_active_preset_is_read_by_some_stage(sample_pipeline, config_reads):
    """No preset setting is silently ignored (the paper preset named a tagger no code used)."""
    cfg, _, _ = sample_pipeline
    preset = cfg.get("models.preset")
    keys = {f"models.presets.{preset}.{k}" for k in cfg.get(f"models.presets.{preset}")}
    read = set().union(*config_reads.values())
    assert keys and keys <= read, sorted(keys - read)
