"""Layered, validated configuration.

Layers, later wins: conf/defaults.yaml <- conf/profiles/<profile>.yaml <- --conf FILE...
<- --set key=value. The defaults file is also the schema: a key that is not in it is
unknown, and a value must have the type of its default. RULES adds ranges and choices.
Every error names the key and the file it came from.
"""
from __future__ import annotations

import copy
import difflib
import math
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from realsyn.conf import CONF_DIR
from realsyn.jobs.core.errors import UserError
from realsyn.jobs.core.redact import MASK, collect_secrets, flat_strings, is_secret_key, redact_value, remember

PROFILES = ("local", "standalone", "databricks", "emr", "gpu")

# Sections whose keys are free-form (checked elsewhere, e.g. Spark conf keys).
FREE_FORM = {"spark.conf"}

# key -> ("range", lo, hi) inclusive, or ("choice", {...}). Unlisted keys only get type checks.
RULES: dict[str, tuple] = {
    "tables.mode": ("choice", {"path", "catalog"}),
    "storage.s3.addressing": ("choice", {"auto", "path", "virtual"}),
    "storage.s3.connector": ("choice", {"auto", "always", "never"}),
    "spark.log_level": ("choice", {"ERROR", "WARN", "INFO", "DEBUG"}),
    "ingest.max_slots": ("range", 1, 10_000_000),
    "ingest.max_text_chars": ("range", 1, 10**10),
    "ingest.max_url_chars": ("range", 16, 1_000_000),
    "ingest.max_metadata_chars": ("range", 2, 10**9),
    "ingest.rejects_sample_chars": ("range", 0, 1_000_000),
    "fetch.connect_timeout_s": ("range", 0.01, 600),
    "fetch.read_timeout_s": ("range", 0.01, 3600),
    "fetch.max_bytes": ("range", 1, 10**10),
    "fetch.max_redirects": ("range", 0, 50),
    "fetch.retries": ("range", 0, 20),
    "fetch.backoff_s": ("range", 0, 60),
    "fetch.concurrency_per_task": ("range", 1, 1024),
    "fetch.deadline_s": ("range", 0.01, 86400),
    "images.min_side_px": ("range", 1, 100_000),
    "images.max_aspect_ratio": ("range", 1.0, 1000.0),
    "images.max_pixels": ("range", 1, 10**11),
    "images.max_jpeg_scans": ("range", 1, 100_000),
    "images.phash_max_hamming": ("range", 0, 64),
    "images.phash_bucket_max": ("range", 2, 10**9),
    "images.semantic_dedup_cosine": ("range", -1.0, 1.0),
    "sentences.splitter": ("choice", {"pysbd", "regex"}),
    "sentences.min_words": ("range", 1, 10_000),
    "sentences.max_words": ("range", 1, 10_000),
    "sentences.min_complexity": ("range", 0, 100),
    "sentences.complexity_batch_size": ("range", 1, 1_000_000),
    "sentences.entropy_min": ("range", 0.0, 1.0),   # the score is in [0, 1]
    "sentences.ppl_min": ("range", 0.0, 1e9),
    "sentences.ppl_max": ("range", 0.0, 1e9),
    "sentences.ppl_batch_size": ("range", 1, 100_000),
    "sentences.ppl_max_tokens": ("range", 8, 100_000),
    "sentences.semantic_dedup_cosine": ("range", -1.0, 1.0),
    "models.preset": ("choice", {"tiny", "base", "paper"}),
    "embedding.batch_size": ("range", 1, 1_000_000),
    "embedding.storage_dtype": ("choice", {"float32", "float16"}),
    "models.torch_threads": ("range", 1, 1024),
    "embedding.dedup_points_per_cluster": ("range", 2, 10**9),
    "embedding.dedup_group_rows": ("range", 2, 10**9),
    "retrieval.sentences_per_cluster": ("range", 1, 10**9),
    "retrieval.num_clusters": ("range", 0, 10**9),
    "kmeans.sample": ("range", 1, 10**10),
    "kmeans.iters": ("range", 1, 1000),
    "retrieval.probes": ("range", 1, 10**6),
    "retrieval.coarse_min_clusters": ("range", 0, 10**9),
    "retrieval.coarse_probes": ("range", 1, 10**6),
    "retrieval.top_k": ("range", 1, 5),
    "retrieval.min_score": ("range", -1.0, 1.0),
    "retrieval.max_cluster_rows": ("range", 1, 10**9),
    "kmeans.refit_drift": ("range", 0.0, 2.0),
    "generation.caption_max_new_tokens": ("range", 1, 4096),
    "generation.caption_num_beams": ("range", 1, 64),
    "generation.tag_vocab_size": ("range", 1, 10**7),
    "generation.tag_top_m": ("range", 0, 1000),
    "generation.tag_min_score": ("range", -1.0, 1.0),
    "generation.llm_max_new_tokens": ("range", 1, 8192),
    "generation.batch_size": ("range", 1, 100_000),
    "generation.engine": ("choice", {"auto", "transformers", "vllm"}),
    "embedding.mixed_precision": ("choice", {True, False, "float16", "bfloat16"}),
    "generation.vllm_gpu_memory": ("range", 0.01, 1.0),
    "balance.sim_min": ("range", -1.0, 1.0),
    "balance.sim_max": ("range", -1.0, 1.0),
    "balance.num_clusters": ("range", 1, 10**9),
    "balance.images_per_cluster": ("range", 1, 10**9),
    "export.shard_bytes": ("range", 1_000, 10**12),
    "export.resize_to": ("range", 8, 100_000),
    "export.mds_shard_bytes": ("range", 1_000, 10**12),
    "export.card_samples": ("range", 0, 1_000),
    "export.card_sim_bins": ("range", 2, 10_000),
    "run.seed": ("range", 0, 2**32 - 1),   # numpy's and faiss's seeds are 32-bit
    "units.target_seconds": ("range", 0, 86400),
    "units.first_rows_per_task": ("range", 1, 10**9),
    "units.fetch_rows": ("range", 1, 10**10),
    "units.sentence_rows": ("range", 1, 10**10),
    "units.embed_rows": ("range", 1, 10**10),
    "units.generate_rows": ("range", 1, 10**10),
    "resources.clip_task_gpus": ("range", 0.0, 1.0),
    "resources.generation_task_gpus": ("range", 0.0, 1.0),
}

# Shares of one GPU: Spark takes a fraction up to 0.5 (1/n of the device) or a whole GPU.
GPU_SHARE_KEYS = ("resources.clip_task_gpus", "resources.generation_task_gpus")

# Pairs that must be ordered (lo <= hi).
ORDERED = [
    ("sentences.min_words", "sentences.max_words"),
    ("sentences.ppl_min", "sentences.ppl_max"),
    ("balance.sim_min", "balance.sim_max"),
]

# Keys renamed so that a section matches the stages that read it (one k-means section for
# the three fits; one thread count for every model). The old spelling is still read, with
# a warning naming the new key, for one release (docs/decisions.md "One way to declare a
# parameter").
RENAMED = {
    "retrieval.kmeans_sample": "kmeans.sample",
    "retrieval.kmeans_iters": "kmeans.iters",
    "retrieval.refit": "kmeans.refit",
    "retrieval.refit_drift": "kmeans.refit_drift",
    "embedding.torch_threads": "models.torch_threads",
}


class ConfigError(UserError, ValueError):
    """A configuration problem, phrased for the user (key and file named)."""


@dataclass
class Config:
    """The resolved configuration plus where each value came from."""

    data: dict
    sources: dict = field(default_factory=dict)  # dotted key -> file or "--set"
    profile: str = "local"

    def get(self, dotted: str, default: Any = ...) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    raise KeyError(dotted)
                return default
            node = node[part]
        return node

    def section(self, name: str) -> dict:
        return copy.deepcopy(self.data.get(name, {}))

    def hash(self, sections: list[str] | None = None) -> str:
        """Stable hash of the whole config or of the named sections."""
        payload = self.data if sections is None else {s: self.data.get(s) for s in sections}
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def flat(self, redact: bool = True) -> dict[str, str]:
        """Dotted key -> string value, secrets redacted (for logs and MLflow params)."""
        return flat_strings(self.data, redact)

    def with_overrides(self, overrides: list[str]) -> "Config":
        """This config with more KEY=VALUE overrides, checked as load_config checks them."""
        return _resolved(copy.deepcopy(self.data), dict(self.sources), list(overrides), self.profile)

    def redacted(self) -> dict:
        """The whole tree as it may be shown or recorded (jobs/core/redact.py)."""
        return redact_value("", self.data)


class StrictLoader(yaml.SafeLoader):
    """YAML without aliases (a few hundred bytes of nested aliases expand to billions of
    nodes) and without duplicate keys (where the last one would silently win)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: aliases (*name) are not allowed in a config")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: a key must be a plain value, got {key!r}")
            if key in seen:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def strict_yaml(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)   # noqa: S506 - a SafeLoader subclass


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = strict_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}".splitlines()[0]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return loaded


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)


def _check_type(key: str, default: Any, value: Any, source: str) -> Any:
    """Return value coerced to the default's type where lossless, else raise."""
    if default is None or value is None and isinstance(default, str):
        return value
    rule = RULES.get(key)
    if rule and rule[0] == "choice" and len({type(c) for c in rule[1]}) > 1:
        # A choice of several types (true, false or a dtype): the choice is the check.
        if type(value) in {type(c) for c in rule[1]} and value in rule[1]:
            return value
        raise ConfigError(f"{source}: '{key}' must be one of "
                          f"{', '.join(sorted(str(c).lower() if isinstance(c, bool) else c for c in rule[1]))}, "
                          f"got {_type_name(value)} {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, list):
            if default:
                return [_check_type(f"{key}[{i}]", default[0], v, source) for i, v in enumerate(value)]
            return value
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    shown = MASK if is_secret_key(key) else repr(value)
    raise ConfigError(
        f"{source}: '{key}' must be a {_type_name(default)} (like the default {default!r}), "
        f"got {_type_name(value)} {shown}")


def _merge(base: dict, layer: dict, source: str, sources: dict, prefix: str = "") -> None:
    for key, value in layer.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if prefix in FREE_FORM:
            base[key] = value
            sources[dotted] = source
            continue
        if key not in base:
            hint = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            near = f" (did you mean '{prefix + '.' if prefix else ''}{hint[0]}'?)" if hint else ""
            where = f"in section '{prefix}'" if prefix else "as a section"
            raise ConfigError(f"{source}: unknown key '{dotted}' {where}{near}")
        current = base[key]
        is_section = isinstance(current, dict) and (current or dotted in FREE_FORM)
        if is_section and dotted not in FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' is a section and must be a mapping, got {value!r}")
            _merge(current, value, source, sources, dotted)
        elif dotted in FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' must be a mapping, got {value!r}")
            for k, v in value.items():
                current[k] = v
                sources[f"{dotted}.{k}"] = source
        else:
            base[key] = _check_type(dotted, current, value, source)
            sources[dotted] = source


def _renamed(layer: dict, source: str) -> dict:
    """`layer` with every old key (RENAMED) moved to its new name, a warning each; a layer
    that sets both names of one key is an error (which one is meant cannot be told)."""
    for old, new in RENAMED.items():
        old_section, old_key = old.split(".")
        section = layer.get(old_section)
        if not isinstance(section, dict) or old_key not in section:
            continue
        new_section, new_key = new.split(".")
        target = layer.setdefault(new_section, {})
        if not isinstance(target, dict):
            continue   # _merge names the malformed section
        if new_key in target:
            raise ConfigError(f"{source}: '{old}' and '{new}' are both set; '{old}' is the old name of '{new}', "
                              f"keep only '{new}'")
        target[new_key] = section.pop(old_key)
        logging.getLogger("realsyn").warning("%s: '%s' is now '%s'; the old name is read until the next release",
                                             source, old, new)
    return layer


def _leaves(tree: dict, prefix: str = ""):
    for k, v in tree.items():
        dotted = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            yield from _leaves(v, dotted)
        else:
            yield dotted, v


def _check_values(data: dict, sources: dict) -> None:
    """Rules for every value: numbers finite and within what a 64-bit setting holds (NaN or
    1e30 fail later, far from the key), no control characters in a string that goes into
    a request line (a CR/LF in the user agent failed every fetch), and a prompt template
    that names the inputs it is filled with."""
    for key, value in _leaves(data):
        source = sources.get(key, "conf/defaults.yaml")
        numbers = value if isinstance(value, list) else [value]
        for v in numbers:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{source}: '{key}' = {v!r} must be a finite number")
            if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
                raise ConfigError(f"{source}: '{key}' = {v!r} is out of range for a 64-bit integer")
    agent = Config(data).get("fetch.user_agent")
    if any(ord(c) < 32 or ord(c) == 127 for c in agent):
        raise ConfigError(f"{sources.get('fetch.user_agent', 'conf/defaults.yaml')}: 'fetch.user_agent' must not "
                          "hold control characters (a CR or LF would end the request line)")
    template = Config(data).get("generation.prompt_template")
    missing = [p for p in ("{raw_text}", "{caption}") if p not in template]
    if missing:
        raise ConfigError(f"{sources.get('generation.prompt_template', 'conf/defaults.yaml')}: "
                          f"'generation.prompt_template' must contain {' and '.join(missing)} (it is filled "
                          "with {raw_text}, {caption} and {tags}; other braces are kept as text)")


def _check_rules(data: dict, sources: dict) -> None:
    _check_values(data, sources)
    cfg = Config(data)
    for key, rule in RULES.items():
        value = cfg.get(key)
        source = sources.get(key, "conf/defaults.yaml")
        if rule[0] == "range":
            lo, hi = rule[1], rule[2]
            if not lo <= value <= hi:
                raise ConfigError(f"{source}: '{key}' = {value!r} is out of range [{lo}, {hi}]")
        elif rule[0] == "choice" and value not in rule[1]:
            raise ConfigError(f"{source}: '{key}' = {value!r} must be one of {sorted(rule[1])}")
    for lo_key, hi_key in ORDERED:
        if cfg.get(lo_key) > cfg.get(hi_key):
            source = sources.get(lo_key) or sources.get(hi_key, "conf/defaults.yaml")
            raise ConfigError(f"{source}: '{lo_key}' ({cfg.get(lo_key)}) must not exceed '{hi_key}' ({cfg.get(hi_key)})")
    caps = cfg.get("balance.caps")
    if not caps or any(c < 1 for c in caps) or caps != sorted(set(caps)):
        raise ConfigError(f"{sources.get('balance.caps', 'conf/defaults.yaml')}: 'balance.caps' must be distinct positive integers in increasing order, got {caps}")
    from realsyn.udfs.synthesis import TAGGERS
    for name, models in cfg.get("models.presets").items():
        tagger = models.get("tagger") if isinstance(models, dict) else None
        if tagger not in TAGGERS:
            key = f"models.presets.{name}.tagger"
            raise ConfigError(f"{sources.get(key, 'conf/defaults.yaml')}: '{key}' = {tagger!r} is not built; "
                              f"supported: {', '.join(TAGGERS)} (docs/decisions.md: tags by CLIP similarity)")
    preset = cfg.get("models.preset")
    if preset not in cfg.get("models.presets"):
        raise ConfigError(f"{sources.get('models.preset')}: 'models.preset' = {preset!r} has no entry in models.presets")
    from realsyn.udfs.image_decode import SAFE_FORMATS
    formats = cfg.get("images.formats")
    if not formats or any(f not in SAFE_FORMATS for f in formats):
        raise ConfigError(f"{sources.get('images.formats', 'conf/defaults.yaml')}: 'images.formats' may hold "
                          f"{', '.join(SAFE_FORMATS)} (decoded by Pillow alone); got {formats}")
    for key in GPU_SHARE_KEYS:
        if 0.5 < cfg.get(key) < 1.0:
            raise ConfigError(f"{sources.get(key, 'conf/defaults.yaml')}: '{key}' = {cfg.get(key)!r}: a share of "
                              "one GPU must be at most 0.5 (1/n of the device) or 1")
    for scheme in cfg.get("fetch.allowed_schemes"):
        if scheme not in ("http", "https", "file"):
            raise ConfigError(f"{sources.get('fetch.allowed_schemes')}: 'fetch.allowed_schemes' may hold http, https, file; got {scheme!r}")


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=5' -> ('a.b', 5); the value is parsed as YAML so numbers and lists work."""
    if "=" not in text:
        raise ConfigError(f"--set: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set: empty key in {text!r}")
    try:
        value = strict_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw   # kept as the text typed (aliases too): the type checks judge it
    return key, value


def _nest(dotted: str, value: Any) -> dict:
    for section in FREE_FORM:  # keys inside a free-form section have dots of their own
        if dotted.startswith(section + "."):
            return _nest(section, {dotted[len(section) + 1:]: value})
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def load_config(profile: str = "local", files: list[str] | None = None,
                overrides: list[str] | None = None, conf_dir: Path = CONF_DIR) -> Config:
    if profile not in PROFILES:
        raise ConfigError(f"--profile: unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    data = _read_yaml(conf_dir / "defaults.yaml")
    sources: dict[str, str] = {}
    source = f"conf/profiles/{profile}.yaml"
    _merge(data, _renamed(_read_yaml(conf_dir / "profiles" / f"{profile}.yaml"), source), source, sources)
    for f in files or []:
        _merge(data, _renamed(_read_yaml(Path(f)), str(f)), str(f), sources)
    return _resolved(data, sources, overrides or [], profile)


def _resolved(data: dict, sources: dict, overrides: list[str], profile: str) -> Config:
    """The config once the `--set` overrides are layered over `data`, every check passed."""
    for text in overrides:
        key, value = parse_override(text)
        _merge(data, _renamed(_nest(key, value), f"--set {key}"), f"--set {key}", sources)
    collect_secrets(data)   # before any check can quote a value
    remember_environment_secrets()
    _check_rules(data, sources)
    _check_spark_conf(data, sources)
    return Config(data=data, sources=sources, profile=profile)


def remember_environment_secrets() -> None:
    """Secrets Spark, Hadoop or MLflow may take from the environment (AWS_SECRET_ACCESS_KEY,
    MLFLOW_TRACKING_TOKEN...) are masked in whatever this process records or prints."""
    import os
    for name, value in os.environ.items():
        if is_secret_key(name):
            remember(value)


def _check_spark_conf(data: dict, sources: dict) -> None:
    """spark.conf is free-form; check it here, before any JVM starts, so the file is named.
    Inconsistent settings stop the run; unknown keys only warn (Spark has too many keys,
    and new ones each release, for a list of ours to be the judge; see spark_conf_check)."""
    from realsyn.jobs.core.spark_conf_check import check_spark_conf, errors, warnings
    problems = check_spark_conf(data.get("spark", {}).get("conf") or {})

    def where(p) -> str:
        return sources.get(f"spark.conf.{p.key}") or next(
            (s for k, s in sources.items() if k.startswith("spark.conf.")), "conf/defaults.yaml")

    for p in warnings(problems):
        logging.getLogger("realsyn").warning("%s: spark.conf: %s", where(p), p)
    bad = errors(problems)
    if bad:
        raise ConfigError(f"{where(bad[0])}: spark.conf: " + "; ".join(bad))
