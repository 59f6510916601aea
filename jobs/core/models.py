"""The models a stage loads: names from the preset, local weights from models.weights_dir.

One resolver for `models.weights_dir/<role>` (a path only, so building a stage's parameters
touches no file), and one identity for what is there: a content hash of its files, which the
stage's fingerprint folds in so new weights under the same folder rerun the stage. A role
folder that is missing while models.weights_dir is set is a clear error, for every role.
`models.weights_roles` narrows the roles read from the folder (e.g. [clip] for a folder
holding a trained CLIP only); the others load by the preset's name, as without a folder.
"""
from __future__ import annotations

import hashlib
import os
import stat

from realsyn.jobs.core.stage import InputError


class MissingWeights(InputError):
    """models.weights_dir is set but has no folder for a model the stage loads."""


_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) for this process. Only
    regular files are read: a FIFO or a link to a device would block or never end."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MissingWeights(f"models.weights_dir: {path} is a link to nothing (dangling); "
                             "fix or remove it") from None
    if not stat.S_ISREG(st.st_mode):
        raise MissingWeights(f"models.weights_dir: {path} is not a regular file (a FIFO, device or socket); "
                             "a weights folder holds files only")
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def folder_identity(path: str) -> str:
    """Hash of every file's relative name and content under a folder (or of one file)."""
    if os.path.isfile(path):
        return file_hash(path)[:16]
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            h.update(f"{os.path.relpath(full, path)}:{file_hash(full)}\n".encode())
    return h.hexdigest()[:16]


def weights_identity(folders: dict[str, str]) -> dict[str, str]:
    """role -> identity of its local weights; roles without a folder ("") load by name."""
    out = {}
    for role, folder in folders.items():
        if not folder:
            continue
        if not os.path.exists(folder):
            raise MissingWeights(f"models.weights_dir: {folder} does not exist; put the {role} weights there "
                                 "(a save_pretrained folder, or .safetensors for clip) or unset models.weights_dir")
        out[role] = folder_identity(folder)
    return out
