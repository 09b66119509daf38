"""OutboxLock: one live sender per outbox file, whatever name the file is reached by.

Two senders delivering from one outbox would each send a lane's head, breaking the promise of one
message in flight per lane. So the lock is taken on the outbox file itself (its device and inode,
after symlinks are followed), not on a name: a symlink, a hard link, a relative path or a bind
mount all reach the same lock, and there is no lock file beside the outbox that anyone could
delete. The OS drops the lock when the holding process ends in any way, SIGKILL included, so a
crashed sender never blocks the next one. Reading or putting into an outbox needs no lock.

Why every descriptor opened here stays open for the life of the process: closing *any* descriptor
of a file drops *all* the POSIX (fcntl) locks the process holds on it, SQLite's own included
(https://sqlite.org/howtocorrupt.html, section 2.2). A sender's SQLite connection lives on the
same file, so the lock cannot close its descriptor, not even on release or after a failed
attempt. A process-wide registry therefore keeps exactly one descriptor per outbox file (keyed by
device and inode, which cannot be reused while that descriptor is open), and ``release()`` only
unlocks it.

On Linux the lock is ``flock`` on that descriptor: it belongs to the open file description, never
interacts with SQLite's fcntl locks, and needs no write access. ``flock`` by the same description
succeeds twice, so the registry also records which files this process holds: a second sender in
the same process is refused too. Elsewhere (macOS, the BSDs), ``flock`` and fcntl locks may
conflict, so the lock is an fcntl lock on one byte far beyond the bytes SQLite locks; it belongs
to the process, which is why the never-close rule above matters even more there. Network file
systems are not supported (SQLite's WAL mode does not work on them either; Linux emulates
``flock`` there with fcntl locks).

A descriptor inherited through ``fork`` without ``exec`` shares the lock: such a child keeps the
outbox locked until it exits. Descriptors opened here are not inherited by ``subprocess`` children.

What this module must not do: change an existing file's contents or mode, or close a descriptor.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
import threading
from pathlib import Path

from ordered_sender.errors import NotAnOutbox, OutboxInUse, StoreError

FileKey = tuple[int, int]
"""(st_dev, st_ino): which file a path names, whatever the path."""

if sys.platform == "linux":
    # flock needs no write access, so a read-only outbox gets its lock and then its own error
    # from the store, not a PermissionError from here.
    _OPEN_FLAGS = os.O_RDONLY

    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)

else:
    # An exclusive fcntl lock needs a descriptor open for writing. The byte is far past SQLite's
    # lock bytes (around 1 GiB), so the two never conflict.
    _OPEN_FLAGS = os.O_RDWR
    _LOCKED_BYTE = 2**62

    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _LOCKED_BYTE)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def _unlock(descriptor: int) -> None:
        fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, _LOCKED_BYTE)


# O_NONBLOCK so that a FIFO given as an outbox is refused instead of hanging the open.
_OPEN_FLAGS |= os.O_NONBLOCK

_registry_lock = threading.Lock()
_descriptors: dict[FileKey, int] = {}
"""One descriptor per outbox file this process ever locked or tried to; never closed."""
_held: dict[FileKey, Path] = {}
"""The files this process holds, each with the path its holder named it by."""


class OutboxLock:
    """Held from construction until ``release()``; raises OutboxInUse when anyone else holds it.

    ``path`` may be any name of the outbox file. If no file exists there, ``create=True`` (the
    default) creates an empty one readable and writable by its owner only (0600, whatever the
    umask), which SQLite then takes as a new database, and whose mode its WAL and SHM files
    inherit; ``create=False`` raises NotAnOutbox instead, for commands that must not make an
    outbox. A path that names something other than a regular file raises NotAnOutbox.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        with _registry_lock:
            self._key = _registered_key(path, create)
            holder = _held.get(self._key)
            if holder is not None:
                raise OutboxInUse(
                    f"outbox {path} is already delivered from by another sender in this process"
                    f" (opened as {holder}); close that sender first or use another file"
                )
            descriptor = _descriptors[self._key]
            if not _try_lock(descriptor):
                raise OutboxInUse(
                    f"outbox {path} is used by another live sender; stop that sender first or "
                    "use another file"
                )
            if _key_named_by(path) != self._key:
                # Replaced between our open and our lock: what we hold is no longer the outbox
                # SQLite will open by this name.
                _unlock(descriptor)
                raise OutboxInUse(
                    f"outbox {path} was replaced by another file while its lock was taken; "
                    "try again once nothing replaces it"
                )
            _held[self._key] = path
        self._holding = True

    def problem(self) -> str | None:
        """None while ``path`` still names the locked file; otherwise what happened, for the
        operator. A sender checks this now and then and stops delivering when it is not None:
        what it would deliver next is no longer in the outbox anyone else sees."""
        try:
            named = _key_named_by(self.path)
        except FileNotFoundError:
            return (
                f"outbox {self.path} was deleted or moved away while this sender delivered from "
                "it; delivery stopped, and messages not yet delivered are only in the removed file"
            )
        except OSError as error:
            return (
                f"outbox {self.path} can no longer be checked ({error.strerror}); delivery stopped"
            )
        if named != self._key:
            return (
                f"outbox {self.path} was replaced by another file while this sender delivered "
                "from it; delivery stopped, start a sender on the new file to deliver its messages"
            )
        return None

    def release(self) -> None:
        """Let another sender in; calling it again does nothing."""
        with _registry_lock:
            if not self._holding:
                return
            self._holding = False
            del _held[self._key]
            # Unlock only: closing the descriptor would drop SQLite's fcntl locks (see above).
            _unlock(_descriptors[self._key])


def _key_named_by(path: Path) -> FileKey:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _registered_key(path: Path, create: bool) -> FileKey:
    """The key of the file ``path`` names, with its descriptor in the registry."""
    try:
        key = _key_named_by(path)
    except FileNotFoundError:
        if not create:
            raise NotAnOutbox(
                f"outbox {path} does not exist; check the path, or put a message to create it"
            ) from None
        descriptor = _created(path)
    else:
        if key in _descriptors:
            return key
        try:
            descriptor = os.open(path, _OPEN_FLAGS)
        except OSError as error:
            raise StoreError(path, f"cannot be opened: {error.strerror}") from None
    status = os.fstat(descriptor)
    key = status.st_dev, status.st_ino
    if not stat.S_ISREG(status.st_mode):
        # Not a file SQLite could hold open, so closing this descriptor drops nobody's lock.
        os.close(descriptor)
        raise NotAnOutbox(f"outbox {path} is not a regular file; give the path of an outbox file")
    # If the path changed between the stat and the open to a file already registered, the new
    # descriptor is left open unregistered rather than closed, for the reason in the docstring.
    _descriptors.setdefault(key, descriptor)
    return key


def _created(path: Path) -> int:
    """A descriptor of a new empty 0600 file at ``path``, or of the file someone just made."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(path, _OPEN_FLAGS)
    except OSError as error:
        raise creation_refused(path, error) from None
    # The umask can only remove bits from 0600, but an odd one could leave the owner unable to
    # write; set the mode outright on the file we just made, and only on it.
    os.fchmod(descriptor, 0o600)
    return descriptor


def creation_refused(path: Path, error: OSError) -> StoreError:
    """Why a new outbox file could not be made at ``path``, in the user's terms."""
    if isinstance(error, FileNotFoundError):
        if path.parent.is_dir():  # /proc, say: the folder is there but makes no new files
            return StoreError(
                path, f"cannot be created: its folder {path.parent} makes no new files"
            )
        return StoreError(
            path, f"cannot be created: its folder {path.parent} does not exist; create it first"
        )
    return StoreError(path, f"cannot be created: {error.strerror}")
