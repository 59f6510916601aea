"""Parameters declared once: each field of a parameter dataclass says where its value comes from.

A field with no declaration reads `<SECTION>.<field name>`, SECTION being the class's own
config section. Where a value is shared deliberately with another section, or named
differently, the field says so:

    seed: int = setting("run.seed")            # a key in another section
    captioner: str = preset("captioner")       # the active model preset's name for a role
    captioner_dir: Location = weights("captioner")   # models.weights_dir/<role>
    policy: UrlPolicy = nested(UrlPolicy)      # a parameter dataclass of its own

The resolver (realsyn.jobs.core.params.from_config) reads these; this module holds only
the declarations, so the executor-side specs in udfs/ can declare their keys without
importing the jobs.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

KEY, PRESET, WEIGHTS, NESTED, CONVERT = "config_key", "preset_role", "weights_role", "nested", "convert"


def setting(key: str, **field_kw) -> Any:
    """The value of config key `key` (dotted)."""
    return dataclasses.field(metadata={KEY: key}, **field_kw)


def converted(convert: Callable[[Any], Any], **field_kw) -> Any:
    """The value of the field's default key, converted (e.g. a path made absolute)."""
    return dataclasses.field(metadata={CONVERT: convert}, **field_kw)


def preset(role: str, **field_kw) -> Any:
    """The model name the active preset gives `role` (models.presets.<preset>.<role>)."""
    return dataclasses.field(metadata={PRESET: role}, **field_kw)


def weights(role: str, **field_kw) -> Any:
    """The local weights folder of `role` under models.weights_dir ("" when none is set)."""
    return dataclasses.field(metadata={WEIGHTS: role}, **field_kw)


def nested(cls: type, **field_kw) -> Any:
    """A parameter dataclass of its own, resolved by the same rules."""
    return dataclasses.field(metadata={NESTED: cls}, **field_kw)


def default_key(cls: type, field: dataclasses.Field) -> str | None:
    """`<SECTION>.<name>` for an undeclared field; None when the class names no section."""
    section = getattr(cls, "SECTION", None)
    return f"{section}.{field.name}" if section else None
