"""Argument checks shared by configs, layers and data readers, with the project's one error form.

Each check raises `ValueError("`name` must be .... Received: name=value")`. `name` is shown as given (a
command-line flag is checked as `"--flag"`); the value is shown through `show`: `repr` by default, `str`
(or any formatter) where the message echoes what was typed on a command line. Booleans are not numbers here,
although Python counts them as integers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def check_one_of(name: str, value: Any, allowed: Iterable[Any], show: Callable[[Any], str] = repr) -> None:
    """`value` must be one of `allowed` (listed in the message in the order given)."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}. Received: {name}={show(value)}")


def check_int_at_least(name: str, value: Any, minimum: int, show: Callable[[Any], str] = repr,
                       minimum_text: str | None = None) -> None:
    """`value` must be an integer >= `minimum` (named in the message as `minimum_text` when given)."""
    if not is_integer(value) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum_text or minimum}. Received: {name}={show(value)}")


def check_int_in_range(name: str, value: Any, minimum: int, maximum: int, show: Callable[[Any], str] = repr) -> None:
    """`value` must be an integer in [`minimum`, `maximum`]."""
    if not is_integer(value) or not minimum <= value <= maximum:
        raise ValueError(f"`{name}` must be an integer in [{minimum}, {maximum}]. Received: {name}={show(value)}")


def check_number(name: str, value: Any, allowed: str, predicate: Callable[[float], bool],
                 show: Callable[[Any], str] = repr) -> None:
    """`value` must be an int or float for which `predicate(float(value))` holds; `allowed` describes that."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not predicate(float(value)):
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={show(value)}")


def is_integer(value: Any) -> bool:
    """Whether `value` is an `int` and not a `bool`."""
    return isinstance(value, int) and not isinstance(value, bool)
