"""What of a parameter object decides what a stage writes: the form every fingerprint hashes.

Dataclasses become dicts field by field; a location field (udfs/locations.py) becomes
whether it is set, because what it points at is fingerprinted by content beside it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from realsyn.udfs.locations import location_fields


def decisive(value: Any) -> Any:
    """A JSON-ready form of `value` without the locations it holds."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        located = location_fields(type(value))
        return {f.name: bool(getattr(value, f.name)) if f.name in located else decisive(getattr(value, f.name))
                for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): decisive(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [decisive(v) for v in value]
    return value
