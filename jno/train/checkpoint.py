"""Orbax checkpoints of the whole trainer state.

A checkpoint holds the parameters and non-parameter variables of every network, the
optimizer states, the schedule and balancer state, the step count (which also fixes
the per-step point-sampling keys), and, as JSON, the seed, the loss-term names and the
history. Orbax writes each checkpoint into a temporary directory and renames it when
complete, so a process killed while saving leaves the previous checkpoint restorable.
Restoring reads arrays and JSON only: no pickle, no code from the file is executed.

Arrays keep their dtype: a checkpoint written with ``jax_enable_x64`` (float64 state)
restores only into a float64 trainer and one written without it (float32) only into a
float32 trainer; anything else raises :class:`CheckpointMismatch` instead of casting.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jno.train.processes import is_primary, sync

__all__ = [
    "CheckpointMismatch",
    "CheckpointSaveFailed",
    "CheckpointUnreadable",
    "Checkpointer",
    "read_newest",
]


class CheckpointMismatch(ValueError):
    """The checkpoint on disk was written by a differently shaped trainer, or with
    another float dtype (``jax_enable_x64`` on one side only)."""


class CheckpointSaveFailed(RuntimeError):
    """Writing a checkpoint failed; training stops, the earlier checkpoints stay.

    Example:
        >>> err = CheckpointSaveFailed("/ckpt", 20, OSError(28, "No space left on device"))
        >>> print(str(err).replace("; ", ";\\n"))
        saving checkpoint 20 into /ckpt failed ([Errno 28] No space left on device);
        the earlier checkpoints in /ckpt stay intact
    """

    def __init__(self, directory: str, step: int | None, error: BaseException):
        self.directory, self.step = directory, step
        which = "a checkpoint" if step is None else f"checkpoint {step}"
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        super().__init__(
            f"saving {which} into {directory} failed ({first}); the earlier checkpoints "
            f"in {directory} stay intact"
        )


class CheckpointUnreadable(RuntimeError):
    """Checkpoints on disk cannot be read (damaged or partial files).

    Attributes:
        directory: the checkpoint directory.
        damaged: ``{step: first line of the reading error}``.
        others: the directory's other checkpoints.

    Example:
        >>> str(CheckpointUnreadable("/ckpt", {20: "DATA_LOSS"}, [10]))
        'checkpoint 20 in /ckpt cannot be read (DATA_LOSS); other checkpoints: [10]'
    """

    def __init__(self, directory: str, damaged: Mapping[int, str], others: list[int]):
        self.directory, self.damaged, self.others = directory, dict(damaged), list(others)
        steps = ", ".join(str(s) for s in sorted(self.damaged))
        reason = next(iter(self.damaged.values()))
        plural = "s" if len(self.damaged) > 1 else ""
        super().__init__(
            f"checkpoint{plural} {steps} in {directory} cannot be read ({reason}); "
            f"other checkpoints: {sorted(self.others) or 'none'}"
        )


def read_newest(
    checkpointer: Checkpointer, like: Any, steps: list[int]
) -> tuple[Any, dict[str, Any] | None, dict[int, str]]:
    """Reads the first readable checkpoint of ``steps`` (newest first) into ``like``.

    Returns:
        ``(state, meta, damaged)``: the state and metadata read (None, None when no step
        could be read) and ``{step: first line of its error}`` of the steps skipped.

    Raises:
        CheckpointMismatch: a readable checkpoint belongs to another trainer (that is
            not damage: no older checkpoint is tried).
    """
    damaged: dict[int, str] = {}
    # Before reading: a failed read's late callbacks can arrive before its error does.
    _quiet_closed_loop_callbacks()
    for step in steps:
        try:
            state, meta = checkpointer.restore(like, step=step)
        except CheckpointMismatch:
            raise
        except Exception as err:  # noqa: BLE001 - tensorstore, orbax and JSON raise many types
            lines = str(err).strip().splitlines()
            damaged[step] = lines[0][:200] if lines else type(err).__name__
            continue
        return state, meta, damaged
    return None, None, damaged


def _quiet_closed_loop_callbacks() -> None:
    """After a failed read, tensorstore still completes the aborted reads through
    callbacks on orbax's event loop, which is closed by then; Python prints each one's
    ``RuntimeError: Event loop is closed`` as an unraisable exception. Drop those
    reports (only those) so the warning that names the damaged checkpoint stands out.
    A hook installed later (a test runner's, per test) replaces this filter."""
    previous = sys.unraisablehook
    if getattr(previous, "_jno_quiet", False):
        return

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook._jno_quiet = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


class Checkpointer:
    """Saves and restores trainer states under ``directory`` (the last ``keep`` kept).

    Args:
        directory: Checkpoint directory (created if missing).
        keep: Number of most recent checkpoints kept.

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> ckpt = Checkpointer(tempfile.mkdtemp(), keep=2)
        >>> ckpt.save(10, {"w": jnp.ones(3)}, {"seed": 0})
        >>> ckpt.wait()
        >>> state, meta = ckpt.restore({"w": jnp.zeros(3)})
        >>> ckpt.latest_step(), state["w"].tolist(), meta["seed"]
        (10, [1.0, 1.0, 1.0], 0)
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3):
        self.directory = os.path.abspath(os.fspath(directory))
        self._manager = ocp.CheckpointManager(
            self.directory,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "meta": ocp.JsonCheckpointHandler(),
            },
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                create=True,
                enable_async_checkpointing=True,
                # Several managers of one run (an ensemble's members) save at the same
                # step: their processes' barriers need names of their own.
                multiprocessing_options=ocp.options.MultiprocessingOptions(
                    barrier_sync_key_prefix=hashlib.sha1(self.directory.encode()).hexdigest()[:16]
                ),
            ),
        )

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Steps of every complete checkpoint kept."""
        self._manager.reload()
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: Mapping[str, Any]) -> None:
        """Starts writing ``state`` (arrays) and ``meta`` (JSON) as checkpoint ``step``.

        Raises:
            CheckpointSaveFailed: the write failed (disk full, no permission, ...);
                the earlier checkpoints stay intact.
        """
        try:
            self._manager.save(
                int(step),
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(_json_safe(meta))
                ),
                force=True,
            )
        except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many types
            raise CheckpointSaveFailed(self.directory, step, err) from err

    def wait(self) -> None:
        """Blocks until every started save is on disk.

        Raises:
            CheckpointSaveFailed: a save started earlier failed.
        """
        try:
            self._manager.wait_until_finished()
        except Exception as err:  # noqa: BLE001
            raise CheckpointSaveFailed(self.directory, None, err) from err

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores checkpoint ``step`` (default: newest) into the structure of ``like``.

        Raises:
            CheckpointMismatch: an array in the checkpoint has another shape or dtype than
                in ``like`` (no array is cast: a float32 checkpoint does not restore into
                a float64 trainer, nor the reverse), or the structures differ.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        stored = self._manager.item_metadata(step)["state"]
        like, empty = _with_empty_entries(stored, like)
        _check_compatible(stored, like, f"{self.directory}/{step}")
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
            like,
        )
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
        state = restored["state"]
        if empty:
            state = {k: v for k, v in state.items() if k not in empty}
        return state, dict(restored["meta"])

    def set_aside(self, step: int) -> str:
        """Renames checkpoint ``step`` to ``<step>.damaged`` (``.damaged-1``, ... if
        taken) so that new checkpoints can take its step; nothing is deleted. Returns
        the new path."""
        self._manager.wait_until_finished()
        source = os.path.join(self.directory, str(int(step)))
        target, n = f"{source}.damaged", 0
        while os.path.exists(target):
            n += 1
            target = f"{source}.damaged-{n}"
        sync(f"jno-set-aside-{step}-start")  # every process chose the same name
        if is_primary():
            os.rename(source, target)
        sync(f"jno-set-aside-{step}-done")
        self._manager.reload()
        return target

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def _with_empty_entries(stored: Any, like: Any) -> tuple[Any, tuple[str, ...]]:
    """``like`` plus the top-level entries that the checkpoint holds as None and
    ``like`` lacks (an empty slot of an older layout, e.g. ``"causal": None``), and
    their names: they restore as nothing rather than failing the structure check."""
    if not (isinstance(like, Mapping) and hasattr(stored, "keys")):
        return like, ()
    empty = tuple(
        k
        for k in stored
        if k not in like and (stored[k] is None or getattr(stored[k], "value_type", None) == "None")
    )
    if not empty:
        return like, ()
    return {**like, **dict.fromkeys(empty)}, empty


def _path_key(path: tuple) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(p for p in parts if p != "value")


def _check_compatible(stored: Any, like: Any, where: str) -> None:
    stored_leaves = {
        _path_key(p): leaf
        for p, leaf in jax.tree_util.tree_flatten_with_path(stored)[0]
        if hasattr(leaf, "shape")
    }
    like_leaves = {_path_key(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(like)[0]}
    missing = sorted(set(like_leaves) - set(stored_leaves))
    extra = sorted(set(stored_leaves) - set(like_leaves))
    if missing or extra:
        raise CheckpointMismatch(
            f"checkpoint {where} does not match this trainer: arrays only here {missing[:5]}, "
            f"only in the checkpoint {extra[:5]}"
        )
    # Parameters first: their shapes are what a user changed when this fails.
    ordered = sorted(like_leaves.items(), key=lambda kv: not kv[0].startswith("params"))
    for key, leaf in ordered:
        saved = stored_leaves[key]
        if tuple(saved.shape) != tuple(leaf.shape):
            raise CheckpointMismatch(
                f"checkpoint {where} does not match this trainer: {key} has shape "
                f"{tuple(saved.shape)} in the checkpoint and {tuple(leaf.shape)} here"
            )
    # Then the dtypes: restoring would cast silently (float64 -> float32 loses precision).
    for key, leaf in ordered:
        found, expected = _dtype_of(stored_leaves[key]), _dtype_of(leaf)
        if found is not None and expected is not None and found != expected:
            hint = ""
            if {found, expected} == {np.dtype(np.float32), np.dtype(np.float64)}:
                hint = (
                    f" (it was written {'with' if found == np.float64 else 'without'} "
                    f"jax_enable_x64, this process runs "
                    f"{'with' if expected == np.float64 else 'without'} it)"
                )
            raise CheckpointMismatch(
                f"checkpoint {where} has dtype {found} where this trainer expects {expected}, "
                f"for {key}{hint}: arrays are never cast on restore; resume with the same "
                "jax_enable_x64 setting, or use another checkpoint_dir"
            )


def _dtype_of(leaf: Any) -> np.dtype | None:
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:  # e.g. a typed PRNG key: compared through its shape only
        return None


def _json_safe(value: Any) -> Any:
    """NaN and Inf are not JSON: store them as None."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
