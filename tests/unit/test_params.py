"""One way to declare a parameter: keyword-only dataclasses whose fields name their keys."""
import dataclasses
import logging

import pytest

from realsyn.jobs.core.config import RENAMED, Config, ConfigError, load_config
from realsyn.jobs.core.params import config_keys, from_config
from realsyn.jobs.pipeline import all_stages
from realsyn.udfs import declared
from realsyn.udfs.fetch import FetchSettings
from realsyn.udfs.image_decode import DecodeLimits


# Left positional so that no work fingerprint changes (its docstring says why): the one exception.
POSITIONAL_UNTIL_NEXT_CHANGE = {DecodeLimits}


def leaves(tree, prefix=""):
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else k
        yield from leaves(v, key) if isinstance(v, dict) and v else [key]


def nested_classes(cls):
    yield cls
    for f in dataclasses.fields(cls):
        if declared.NESTED in f.metadata:
            yield from nested_classes(f.metadata[declared.NESTED])


def test_every_stage_declares_keys_that_exist_and_takes_keywords_only():
    cfg = load_config("local")
    known = set(leaves(cfg.data))
    for stage in all_stages():
        params = stage.Params.from_config(cfg)
        if not dataclasses.is_dataclass(params):
            continue
        keys = config_keys(stage.Params, cfg)
        assert keys and keys <= known, (stage.name, keys - known)
        for cls in nested_classes(stage.Params):
            if cls in POSITIONAL_UNTIL_NEXT_CHANGE:
                continue
            assert all(f.kw_only for f in dataclasses.fields(cls)), cls.__name__
            with pytest.raises(TypeError):
                cls(*[None] * len(dataclasses.fields(cls)))   # no positional construction


def test_fields_read_their_declared_keys_and_lists_become_tuples():
    cfg = load_config("local", overrides=["fetch.concurrency_per_task=5", "fetch.allow_loopback=true",
                                          "fetch.allowed_schemes=[http]", "run.seed=9"])
    fetch = from_config(FetchSettings, cfg)
    assert fetch.concurrency == 5 and fetch.policy.allow_loopback and fetch.policy.allowed_schemes == ("http",)
    params = {s.name: s.Params.from_config(cfg) for s in all_stages()}
    assert params["cluster"].seed == params["generate"].models.seed == params["embed"].encoder.seed == 9
    assert params["export"].caps == tuple(cfg.get("balance.caps"))


def test_a_field_without_a_key_or_section_is_named_in_the_error():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Orphan:
        depth: int

    with pytest.raises(TypeError, match=r"Orphan\.depth: no config key"):
        from_config(Orphan, Config({}))


def test_renamed_keys_are_read_with_a_warning_naming_the_new_key(caplog, tmp_path):
    conf = tmp_path / "old.yaml"
    conf.write_text("retrieval:\n  kmeans_iters: 7\n  top_k: 2\nembedding:\n  torch_threads: 3\n")
    with caplog.at_level(logging.WARNING, logger="realsyn"):
        cfg = load_config("local", files=[str(conf)], overrides=["retrieval.refit=true"])
    assert (cfg.get("kmeans.iters"), cfg.get("models.torch_threads"), cfg.get("kmeans.refit")) == (7, 3, True)
    assert cfg.get("retrieval.top_k") == 2 and "kmeans_iters" not in cfg.get("retrieval")
    said = caplog.text
    assert "'retrieval.kmeans_iters' is now 'kmeans.iters'" in said and str(conf) in said
    assert "'embedding.torch_threads' is now 'models.torch_threads'" in said
    assert "'retrieval.refit' is now 'kmeans.refit'" in said


def test_both_names_of_one_key_in_one_file_is_an_error(tmp_path):
    conf = tmp_path / "both.yaml"
    conf.write_text("retrieval:\n  kmeans_sample: 10\nkmeans:\n  sample: 20\n")
    with pytest.raises(ConfigError, match=r"both.yaml: 'retrieval.kmeans_sample' and 'kmeans.sample' are both set"):
        load_config("local", files=[str(conf)])


def test_renamed_keys_point_at_keys_of_the_defaults_and_the_old_ones_are_gone():
    known = set(leaves(load_config("local").data))
    assert set(RENAMED.values()) <= known
    assert not set(RENAMED) & known
