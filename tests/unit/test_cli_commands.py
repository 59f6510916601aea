"""The CLI's table of commands and the stages' spark-submit entry points."""
import ast
import sys

import pytest

from realsyn.jobs import cli
from realsyn.jobs.pipeline import all_stages, stage_names


def subcommands() -> set[str]:
    parser = cli.build_parser(stage_names())
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_every_command_has_a_handler_in_the_module_that_owns_it():
    commands = subcommands()
    assert set(cli.COMMANDS) <= commands
    for command in commands:
        handler = cli.handler(command)
        assert callable(handler), command
        if command in stage_names():
            assert handler is cli.run_command, command
    assert cli.handler("check-models").__module__ == "realsyn.jobs.checks.model_check"
    assert cli.handler("teach").__module__ == "realsyn.jobs.training.student_cli"


def test_each_stage_file_ends_with_the_two_line_entry_point():
    for stage in all_stages():
        module = sys.modules[type(stage).__module__]
        tree = ast.parse(open(module.__file__).read())
        last = tree.body[-1]
        assert ast.unparse(last) == f"if __name__ == '__main__':\n    sys.exit({type(stage).__name__}.main())", \
            module.__name__
        assert not any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), module.__name__


def test_a_stage_entry_point_is_the_cli_command_of_that_stage(monkeypatch, capsys):
    from realsyn.jobs.ingest import Ingest
    monkeypatch.setattr(sys, "argv", ["jobs/ingest.py", "--help"])
    with pytest.raises(SystemExit) as done:
        Ingest.main()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: realsyn ingest") and "--full-refresh" in out


def test_a_config_with_more_overrides_is_checked_and_leaves_the_first_alone():
    from realsyn.jobs.core.config import ConfigError, load_config
    cfg = load_config("local", [], ["retrieval.top_k=3"])
    more = cfg.with_overrides(["retrieval.top_k=5", "spark.progress_bar=false"])
    assert (cfg.get("retrieval.top_k"), more.get("retrieval.top_k")) == (3, 5)
    assert more.sources["retrieval.top_k"] == "--set retrieval.top_k" and more.profile == cfg.profile
    with pytest.raises(ConfigError, match="retrieval.topk"):
        cfg.with_overrides(["retrieval.topk=5"])
