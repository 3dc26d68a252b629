"""Damage done to checkpoints on disk by the fault tests."""

from __future__ import annotations

import pathlib


def flip_array_bytes(step_dir: pathlib.Path) -> None:
    """Inverts every byte of a checkpoint's array data files (``state/**/d/*``)."""
    for path in (step_dir / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(bytes(255 - b for b in path.read_bytes()))
