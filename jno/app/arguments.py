"""Argument types of the ``jno`` command: counts, widths, and the problem to train.

Example:
    >>> positive_int("3"), widths("20,20"), problem_argument("Burgers1D")
    (3, [20, 20], 'burgers1d')
"""

from __future__ import annotations

import argparse

from jno.app.experiment import PROBLEMS
from jno.app.user_problems import is_problem_file, load_problem
from jno.nnx._checks import check_positive_int

__all__ = ["positive_int", "problem_argument", "widths"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (:func:`jno.nnx._checks.check_positive_int` on the
    parsed text; argparse names the option in front of the message).

    Example:
        >>> positive_int("3")
        3
        >>> positive_int("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: value must be an integer >= 1, got 0
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    try:
        return check_positive_int("value", value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def problem_argument(text: str) -> str:
    """argparse type: a packaged problem's name (lower-cased) or ``file.py:Class``.

    Example:
        >>> problem_argument("Burgers1D")
        'burgers1d'
        >>> problem_argument("my/flow.py:Channel")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: problem file 'my/flow.py' does not exist
    """
    if is_problem_file(text):
        try:
            load_problem(text)  # a missing file or class is an error of the argument
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    if text.lower() not in PROBLEMS:
        raise argparse.ArgumentTypeError(
            f"unknown problem {text!r}: one of {', '.join(PROBLEMS)}, or path/to/file.py:Class"
        )
    return text.lower()


def widths(text: str) -> list[int]:
    try:
        return [positive_int(w) for w in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive widths like 50,50,50, got {text!r}"
        ) from None
