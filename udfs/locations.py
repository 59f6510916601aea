"""Fields that say where something is (a weights folder, an input glob), not what it is.

A stage identifies what such a field points at by content (the weights' file hashes, the
input files' hashes), so the path itself never enters a fingerprint: moving a folder
recomputes nothing. What is left of the field there is whether it is set, since a set
folder means "load these weights" and an empty one "load by the preset's name".
Declare one as `weights: Location` in a dataclass.
"""
from __future__ import annotations

import functools
import typing
from typing import Annotated

LOCATION_MARK = "realsyn.location"
Location = Annotated[str, LOCATION_MARK]


@functools.cache
def location_fields(cls: type) -> frozenset[str]:
    """The names of a dataclass's fields declared as Location."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(name for name, hint in hints.items() if LOCATION_MARK in getattr(hint, "__metadata__", ()))
