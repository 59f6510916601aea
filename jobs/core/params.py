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


def field_value(cls: type, f: dataclasses.Field, cfg: Config) -> Any:
    """One field's value as its declaration says (udfs/declared.py)."""
    meta = f.metadata
    if declared.NESTED in meta:
        return from_config(meta[declared.NESTED], cfg)
    if declared.PRESET in meta:
        return preset_model(cfg, meta[declared.PRESET])
    if declared.WEIGHTS in meta:
        return weights_folder(cfg, meta[declared.WEIGHTS])
    key = meta.get(declared.KEY) or declared.default_key(cls, f)
    if key is None:
        raise TypeError(f"{cls.__name__}.{f.name}: no config key (declare it with setting(...), or give "
                        f"{cls.__name__} a SECTION)")
    value = cfg.get(key)
    value = tuple(value) if isinstance(value, list) else value   # frozen parameters hold tuples
    convert = meta.get(declared.CONVERT)
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
        meta = f.metadata
        if declared.NESTED in meta:
            keys |= config_keys(meta[declared.NESTED], cfg)
        elif declared.PRESET in meta:
            keys.add(f"models.presets.{cfg.get('models.preset')}.{meta[declared.PRESET]}")
        elif declared.WEIGHTS in meta:
            keys.add("models.weights_dir")
        else:
            key = meta.get(declared.KEY) or declared.default_key(cls, f)
            if key:
                keys.add(key)
    return keys
