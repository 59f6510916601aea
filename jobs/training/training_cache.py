"""Reuse of a model trained here while what it was trained from is unchanged.

A trained model's report (JSON beside its weights) records an inputs key: a hash of its
settings and of the files it is a function of (its data and the code that trains it).
`realsyn teach` trains again only when the key differs, or with --force.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable


def inputs_key(settings: dict, files: Iterable[str]) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in files:
        with open(path, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


def cached_report(report_path: str, weights_path: str, key: str) -> dict | None:
    """The stored report when its key matches and its weights are there, else None."""
    if not (os.path.exists(report_path) and os.path.exists(weights_path)):
        return None
    with open(report_path) as fh:
        report = json.load(fh)
    return report if report.get("inputs_key") == key else None


def write_report(report_path: str, report: dict) -> None:
    with open(report_path, "w") as fh:
        json.dump(report, fh, indent=1)
