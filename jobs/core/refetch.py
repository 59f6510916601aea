"""`realsyn refetch --reasons ...`: forget the fetch outcomes rejected for those reasons, so
the next run of extract_images fetches exactly those URLs again (and only them); the later
stages then rerun on the changed pool, ledgers and funnel counted from the new rows.
`realsyn refetch --all` forgets every stored response: a stored response is what the web
said then, and no code or decode change fetches it again (docs/decisions.md)."""
from __future__ import annotations

import re

from pyspark.sql import Column
from pyspark.sql import functions as F

from realsyn.jobs.core.config import ConfigError

FETCHES = "silver.image_fetches"
# Failures a later attempt or a larger limit can cure. Policy rejections (opt-out, refused
# addresses) give the same answer every time and are not offered; decode rejections live in
# silver.image_decodes and are decided again from the stored bytes, never fetched again.
# too_large and too_many_redirects are offered for after raising fetch.max_bytes or
# fetch.max_redirects.
RETRYABLE_REASONS = ("timeout", "connection_error", "tls_error", "bad_response", "fetch_error", "read_error",
                     "too_many_redirects", "too_large")
HTTP_REASON = re.compile(r"^http_(\d{3}|[45]xx)$")


def parse_reasons(text: str) -> list[str]:
    """Comma-separated reasons, each retryable, an http_NNN status or an http_4xx / http_5xx family."""
    reasons = [r.strip() for r in (text or "").split(",") if r.strip()]
    if not reasons:
        raise ConfigError("refetch: --reasons needs at least one reason, e.g. --reasons timeout,http_5xx")
    bad = [r for r in reasons if r not in RETRYABLE_REASONS and not HTTP_REASON.match(r)]
    if bad:
        raise ConfigError(f"refetch: cannot retry {', '.join(bad)}; retryable reasons are "
                          f"{', '.join(RETRYABLE_REASONS)}, http_NNN, http_4xx and http_5xx")
    return reasons


def reason_matches(reasons: list[str]) -> Column:
    """fetch_reason is one of the reasons (a family like http_5xx matches every 5NN status)."""
    exact = [r for r in reasons if not r.endswith("xx")]
    families = [r[:-2] for r in reasons if r.endswith("xx")]       # "http_5"
    cond = F.col("fetch_reason").isin(exact) if exact else F.lit(False)
    for prefix in families:
        cond = cond | F.col("fetch_reason").rlike(f"^{prefix}[0-9][0-9]$")
    return cond


def forget_failed(tables, reasons: list[str] | None) -> int:
    """Delete the fetch outcomes rejected for `reasons`, or every outcome for None (one
    commit); how many were deleted."""
    if not tables.exists(FETCHES):
        raise ConfigError(f"refetch: {FETCHES} does not exist yet; run extract_images first")
    cond = reason_matches(reasons) if reasons is not None else F.lit(True)
    n = tables.read(FETCHES).where(cond).count()
    if n:
        tables.delete_where(FETCHES, cond)
    return n


def refetch_before_run(reasons: list[str] | None):
    """The step `realsyn refetch` runs on the pipeline's session before its stages (reasons
    None: `--all`)."""
    def forget(tables, say) -> None:
        n = forget_failed(tables, reasons)
        which = f"rejected for {', '.join(reasons)}" if reasons is not None else "stored (--all)"
        say(f"refetch: {n} image URL(s) {which} will be fetched again")
    return forget
