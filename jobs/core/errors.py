"""The one base class of the failures a user can fix: the CLI reports any of them as one
line naming the key, file or table at fault (exit 2), never a traceback."""
from __future__ import annotations

from abc import ABCMeta

from realsyn.schemas import SchemaMismatch


class UserError(Exception, metaclass=ABCMeta):
    """A failure the user can fix; its message names what is at fault and how to fix it."""


# Classes outside the runtime are registered, not re-based: their modules are work code, and
# a new base would change the code fingerprints of every row they compute (jobs/core/units.py).
UserError.register(SchemaMismatch)
