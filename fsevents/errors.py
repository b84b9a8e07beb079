"""The exceptions fsevents raises.

Each subclass also inherits the built-in a caller would naturally catch (as filelock's
``_error.py`` does), so ``except ValueError`` still works for bad arguments and
``except OSError`` for trouble with the volume.
"""

from __future__ import annotations


class FseventsError(Exception):
    """Base class of every error fsevents raises on purpose."""


class InvalidEventError(FseventsError, ValueError):
    """A topic, name or payload was rejected before anything was written."""


class RootError(FseventsError, OSError):
    """The target cannot be used: not creatable, not a directory, not writable, wrong format."""


class PublishError(FseventsError, OSError):
    """Writing an event to the volume failed; nothing was acknowledged."""


class NodeConflictError(FseventsError, FileExistsError):
    """Another machine writes the same node's stream: two nodes claim one name."""


class ConsumerBusyError(FseventsError, RuntimeError):
    """A durable consumer's cursor is already held by another running process."""


class CorruptEventError(FseventsError, ValueError):
    """A file on the volume is not a valid event; the follower skips it and counts it."""


class SettingsConflictError(FseventsError, FileExistsError):
    """Another process wrote the same settings version first; nothing was overwritten."""


class UnsupportedStoreError(FseventsError, TypeError):
    """A store cannot provide what was asked (e.g. shared settings need a files store)."""


class KeyFileError(FseventsError, ValueError):
    """The farm key file for signed events is missing, unreadable or malformed."""


class VolumeUnavailableError(FseventsError, OSError):
    """The store's volume is gone (unmounted, replaced, failing); followers wait and retry."""
