"""One training per checkpoint directory: a lock file naming its owner."""

from __future__ import annotations

import contextlib
import os
import socket

from jno.train.checkpoint import CheckpointSaveFailed

__all__ = ["CheckpointDirectoryInUse", "DirectoryLock"]


class CheckpointDirectoryInUse(RuntimeError):
    """Another live process trains into the same ``checkpoint_dir``."""


class DirectoryLock:
    """A lock file ``<directory>/.jno-lock`` holding the owner's pid and host.

    ``acquire()`` creates it atomically; a lock left by a process that no longer runs
    on this host is taken over. A lock held by a live process (or by another host,
    whose processes cannot be checked) raises :class:`CheckpointDirectoryInUse` naming
    the owner; a directory this process cannot write raises
    :class:`~jno.train.checkpoint.CheckpointSaveFailed` before any training is spent.
    ``release()`` removes it if this process holds it.

    Example:
        >>> import tempfile
        >>> lock = DirectoryLock(tempfile.mkdtemp())
        >>> lock.acquire(); lock.held
        True
        >>> lock.release(); lock.held
        False
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = os.path.abspath(os.fspath(directory))
        self.path = os.path.join(self.directory, ".jno-lock")
        self.held = False

    def _owner(self) -> tuple[int, str] | None:
        try:
            with open(self.path) as f:
                pid, host = f.read().split("\n")[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Takes the lock, or raises :class:`CheckpointDirectoryInUse` or
        :class:`~jno.train.checkpoint.CheckpointSaveFailed` (the directory cannot be
        written: read-only, no permission)."""
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as err:
            raise CheckpointSaveFailed(self.directory, None, err) from err
        me = (os.getpid(), socket.gethostname())
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._owner()
                if owner == me:
                    self.held = True
                    return
                if owner is not None and (owner[1] != me[1] or _alive(owner[0])):
                    raise CheckpointDirectoryInUse(
                        f"checkpoint_dir {self.directory} is in use by process {owner[0]} on "
                        f"host {owner[1]}: use another checkpoint_dir, or stop that run (if it "
                        f"no longer runs, remove {self.path})"
                    ) from None
                try:
                    os.remove(self.path)  # a stale lock: its process is gone
                except OSError as err:
                    raise CheckpointSaveFailed(self.directory, None, err) from err
                continue
            except OSError as err:  # a read-only directory: no checkpoint could be saved
                raise CheckpointSaveFailed(self.directory, None, err) from err
            with os.fdopen(fd, "w") as f:
                f.write(f"{me[0]}\n{me[1]}\n")
            self.held = True
            return
        raise CheckpointDirectoryInUse(f"could not take the lock {self.path}")

    def release(self) -> None:
        """Removes the lock file if this process holds it."""
        if self.held and self._owner() == (os.getpid(), socket.gethostname()):
            with contextlib.suppress(OSError):
                os.remove(self.path)
        self.held = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
