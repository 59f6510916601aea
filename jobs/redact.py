"""Secrets never reach a record: config values under secret-looking keys, credentials in
URIs and signature-like query parameters are replaced by *** wherever the run records or
prints config (MLflow params, tags and artifacts, `realsyn config`, logs, error messages,
Delta table properties).

Two layers: a key rule (`is_secret_key`) and a value rule (`redact_text`: URI userinfo,
query parameters such as sig= or X-Amz-Signature=, and every secret value seen in a loaded
config, wherever it shows up in a text, an exception's message included).
"""
from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
SECRET_WORDS = {"key", "keys", "secret", "secrets", "token", "tokens", "password", "passwd",
                "credential", "credentials", "sas", "signature", "sig", "private", "apikey", "auth",
                "authorization", "cookie"}
# Words that make a key-looking word harmless: `fetch.allow_private_addresses` is a switch.
NOT_SECRET_WORDS = {"allow", "sample", "partition", "stats", "sort", "primary", "cluster"}
_SPLIT = re.compile(r"[._\-\s]+|(?<=[a-z])(?=[A-Z])")
_URI_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s?#]+)@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|token|"
    r"access_token|api_key|apikey|key|password|secret|client_secret)=)(?P<value>[^&\s#\"']+)",
    re.IGNORECASE)
_KNOWN: set[str] = set()   # secret values seen in loaded configs (this process)
MIN_SECRET_CHARS = 4


def is_secret_key(key: str) -> bool:
    words = {w.lower() for w in _SPLIT.split(str(key)) if w}
    return bool(words & SECRET_WORDS) and not (words & NOT_SECRET_WORDS)


def remember(value: str) -> None:
    """A value that must be masked wherever it appears later in this process."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_CHARS:
        return
    if value.lower() in ("true", "false", "none", "null") or re.fullmatch(r"[\d.\-]+", value):
        return   # a switch or a number under a secret-looking key: masking it everywhere would garble text
    if value.startswith(("/", "~", "./")) and " " not in value:
        return   # a path to a key file is not the secret itself, and paths are everywhere in our lines
    _KNOWN.add(value)


def redact_text(text: str) -> str:
    if not isinstance(text, str) or not text:
        return text
    out = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    out = _QUERY_SECRET.sub(lambda m: f"{m['name']}{MASK}", out)
    for secret in sorted(_KNOWN, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def redact_value(key: str, value: Any) -> Any:
    """One config value as it may be shown: masked under a secret key (strings: bools and
    numbers carry nothing secret), URIs and known secrets masked inside any string."""
    if isinstance(value, str):
        return MASK if value and is_secret_key(key) else redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(f"{key}.{k}" if key else str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(key, v) for v in value]
    return value


def flat_strings(tree: dict, redact: bool = True) -> dict[str, str]:
    """Dotted key -> string value of a nested mapping, secrets masked (MLflow params, logs)."""
    import json
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            value = redact_value(prefix, node) if redact else node
            out[prefix] = value if isinstance(value, str) else json.dumps(value, default=str)

    walk("", tree)
    return out


def collect_secrets(data: Any, prefix: str = "") -> None:
    """Remember every secret value of a config tree (masked later wherever it appears)."""
    if isinstance(data, dict):
        for k, v in data.items():
            collect_secrets(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, list):
        for v in data:
            collect_secrets(v, prefix)
    elif isinstance(data, str):
        if is_secret_key(prefix):
            remember(data)
        for m in _URI_USERINFO.finditer(data):
            userinfo = m["userinfo"]
            remember(userinfo)
            remember(userinfo.split(":", 1)[-1])
        for m in _QUERY_SECRET.finditer(data):
            remember(m["value"])


class RedactingFilter(logging.Filter):
    """Masks secrets in every record that passes a handler (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_filter() -> None:
    """On every handler of the root logger (where Spark's py4j and our logs end up)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
