"""Secrets never reach a record: config values under secret-looking keys, credentials in
URIs and signature-like query parameters are replaced by *** wherever the run records or
prints config (MLflow params, tags and artifacts, `realsyn config`, logs, error messages,
Delta table properties).

Two layers: a key rule (`is_secret_key`: secret words, also inside compound names such as
PGPASSWORD) and a value rule (`redact_text`: URI userinfo, query parameters such as sig=
or X-Amz-Signature=, values shaped like a secret (a bearer header, a well-known token
prefix, a private key block), and every secret value seen in a loaded config or the
environment, wherever it shows up in a text, an exception's message included). Under keys
that carry free-form values (headers, executor environments), a long high-entropy value
counts as a secret too.
"""
from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
SECRET_WORDS = {"key", "keys", "secret", "secrets", "token", "tokens", "password", "passwd",
                "credential", "credentials", "sas", "signature", "sig", "private", "apikey", "auth",
                "authorization", "cookie", "pat", "pass", "passphrase", "passcode", "bearer", "pwd"}
# Long enough to be a secret at the end of a word (PGPASSWORD, DBPASSWD, APITOKEN), and only
# there: TOKENIZERS_PARALLELISM is no secret.
SECRET_STEMS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "bearer")
# Alone, PWD is the shell's working directory; as part of a name (DB_PWD) it is a password.
ONLY_IN_COMPOUNDS = {"pwd"}
# Keys whose values are free-form (headers, environments): a random-looking value is a secret.
FREE_FORM_WORDS = {"header", "headers", "env", "executorenv", "environment"}
# Words that make a key-looking word harmless: `fetch.allow_private_addresses` is a switch.
NOT_SECRET_WORDS = {"allow", "sample", "partition", "stats", "sort", "primary", "cluster"}
_SPLIT = re.compile(r"[._\-\s]+|(?<=[a-z])(?=[A-Z])")
_URI_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s?#]+)@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|token|"
    r"access_token|api_key|apikey|key|password|secret|client_secret)=)(?P<value>[^&\s#\"']+)",
    re.IGNORECASE)
_KNOWN: set[str] = set()   # secret values seen in loaded configs (this process)
# Values that are secrets by their shape, wherever they appear.
_SHAPED = re.compile(
    r"(?P<bearer>\bbearer\s+)(?P<credential>(?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{8,}=*)"
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}|dapi[0-9a-f]{32}|sk-[A-Za-z0-9_\-]{20,}|AIza[0-9A-Za-z_\-]{35})\b"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
    re.IGNORECASE | re.DOTALL)
MIN_SECRET_CHARS = 4


def _words(key: str) -> set[str]:
    return {w.lower() for w in _SPLIT.split(str(key)) if w}


def is_secret_key(key: str) -> bool:
    words = _words(key)
    if words & NOT_SECRET_WORDS:
        return False
    if (words & SECRET_WORDS) - ONLY_IN_COMPOUNDS or (words & ONLY_IN_COMPOUNDS and len(words) > 1):
        return True
    return any(w.endswith((stem, stem + "s")) for w in words for stem in SECRET_STEMS)


def looks_random(value: str) -> bool:
    """A long token of mixed letters and digits with high entropy: a generated credential."""
    import math
    if len(value) < 24 or any(c.isspace() for c in value) or value.startswith(("/", "~", "./")):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts = {c: value.count(c) for c in set(value)}
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 4.0


def is_secret_value(key: str, value: str) -> bool:
    """A value masked whole: under a secret key, or random-looking under a free-form key."""
    return bool(value) and (is_secret_key(key) or (bool(_words(key) & FREE_FORM_WORDS) and looks_random(value)))


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
    out = _SHAPED.sub(lambda m: f"{m['bearer']}{MASK}" if m["bearer"] else MASK, out)
    for secret in sorted(_KNOWN, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def redact_value(key: str, value: Any) -> Any:
    """One config value as it may be shown: masked under a secret key (strings: bools and
    numbers carry nothing secret), URIs and known secrets masked inside any string."""
    if isinstance(value, str):
        return MASK if is_secret_value(key, value) else redact_text(value)
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
        if is_secret_value(prefix, data):
            remember(data)
        for m in _SHAPED.finditer(data):
            remember(m["credential"] or m.group(0))
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
