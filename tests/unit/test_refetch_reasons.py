"""Which rejections `realsyn refetch` may retry (pure: no Spark)."""
import pytest

from realsyn.jobs.core.config import ConfigError
from realsyn.jobs.core.refetch import parse_reasons


def test_retryable_reasons_statuses_and_families_are_accepted():
    assert parse_reasons(" timeout, http_503 ,http_5xx,connection_error") == [
        "timeout", "http_503", "http_5xx", "connection_error"]


@pytest.mark.parametrize("text, bad", [("not_an_image", "not_an_image"), ("http_6xx", "http_6xx"), ("opt_out,timeout", "opt_out"),
                                       ("http_50", "http_50")])
def test_rejections_a_retry_cannot_change_are_refused(text, bad):
    with pytest.raises(ConfigError, match=f"cannot retry {bad}"):
        parse_reasons(text)


def test_no_reason_is_an_error():
    with pytest.raises(ConfigError, match="at least one reason"):
        parse_reasons(" , ")
