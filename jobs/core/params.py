"""One generic `from_config` for every parameter dataclass (udfs/declared.py says how a
field is declared): stage parameters and the executor-side specs they hold are built by
keyword from the config, never positionally, so adding a parameter is one field, its
key in conf/defaults.yaml, and a range in jobs/core/config.RULES where needed.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

from realsyn.jobs.core.config import Config, ConfigError
from realsyn.udfs import declared

T = TypeVar("T")


def preset_model(cfg: Config, role: str) -> str:
    """The model name the active preset gives a role (clip, captioner, llm, ppl_lm, ...)."""
    return cfg.get(f"models.presets.{cfg.get('models.preset')}.{role}")


def weights_folder(cfg: Config, role: str) -> str:
    """models.weights_dir/<role> as an absolute path, or "" when no weights_dir is set.
    A path only: building a stage's parameters touches no file (jobs/core/models.py hashes it)."""
    root = cfg.get("models.weights_dir")
    if not root:
        return ""
    roles = cfg.get("models.weights_roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise ConfigError(f"models.weights_roles must be null or a list of roles like [clip], got {roles!r}")
    if roles is not None and role not in roles:
        return ""
    return os.path.join(os.path.abspath(os.path.expanduser(root)), role)


def field_source(cls: type, f: dataclasses.Field) -> tuple[str, Any]:
    """Where a field's value comes from, as its declaration says (udfs/declared.py):
    (NESTED, class), (PRESET, role), (WEIGHTS, role) or (KEY, dotted key)."""
    meta = f.metadata
    for kind in (declared.NESTED, declared.PRESET, declared.WEIGHTS):
        if kind in meta:
            return kind, meta[kind]
    key = meta.get(declared.KEY) or declared.default_key(cls, f)
    if key is None:
        raise TypeError(f"{cls.__name__}.{f.name}: no config key (declare it with setting(...), or give "
                        f"{cls.__name__} a SECTION)")
    return declared.KEY, key


def field_value(cls: type, f: dataclasses.Field, cfg: Config) -> Any:
    """One field's value, read from cfg where its declaration says."""
    kind, source = field_source(cls, f)
    if kind == declared.NESTED:
        return from_config(source, cfg)
    if kind == declared.PRESET:
        return preset_model(cfg, source)
    if kind == declared.WEIGHTS:
        return weights_folder(cfg, source)
    value = cfg.get(source)
    value = tuple(value) if isinstance(value, list) else value   # frozen parameters hold tuples
    convert = f.metadata.get(declared.CONVERT)
    return convert(value) if convert else value


def from_config(cls: type[T], cfg: Config) -> T:
    """An instance of the parameter dataclass `cls`, every field read from `cfg` by keyword
    (a class that is no dataclass declares no parameter)."""
    if not dataclasses.is_dataclass(cls):
        return cls()
    return cls(**{f.name: field_value(cls, f, cfg) for f in dataclasses.fields(cls) if f.init})


class Declared:
    """Parameters built by the generic from_config (subclasses are dataclasses)."""

    @classmethod
    def from_config(cls, cfg: Config):
        return from_config(cls, cfg)


def config_keys(cls: type, cfg: Config) -> set[str]:
    """The dotted keys `cls` reads directly (nested classes included; presets and weights
    resolve through models.*), for docs and tests."""
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        kind, source = field_source(cls, f)
        if kind == declared.NESTED:
            keys |= config_keys(source, cfg)
        else:
            keys.add({declared.PRESET: f"models.presets.{cfg.get('models.preset')}.{source}",
                      declared.WEIGHTS: "models.weights_dir"}.get(kind, source))
    return keys
