"""The shared argument checks: what they accept, and their one message form."""

import math

import pytest

from ltp_tf.validation import check_int_at_least, check_int_in_range, check_number, check_one_of, is_integer


def test_one_of():
    check_one_of("mode", "b", ("a", "b"))
    check_one_of("mode", "y", {"x": 1, "y": 2})  # a mapping's keys
    with pytest.raises(ValueError, match=r"^`mode` must be one of \['a', 'b'\]. Received: mode='c'$"):
        check_one_of("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match=r"^`--mode` must be one of \['a', 'b'\]. Received: --mode=c$"):
        check_one_of("--mode", "c", ("a", "b"), show=str)
    with pytest.raises(ValueError, match=r"Received: mode=\['a'\]"):  # unhashable values are refused, not a TypeError
        check_one_of("mode", ["a"], {"a": 1})


def test_int_at_least():
    check_int_at_least("n", 3, 3)
    for value in (2, 3.0, True, "3", None):
        with pytest.raises(ValueError, match=rf"^`n` must be an integer >= 3. Received: n={value!r}$"):
            check_int_at_least("n", value, 3)
    with pytest.raises(ValueError, match=r"^`end` must be an integer >= start \(5\). Received: end=4$"):
        check_int_at_least("end", 4, 5, minimum_text="start (5)")


def test_int_in_range():
    check_int_in_range("length", 8, 8, 512)
    check_int_in_range("length", 512, 8, 512)
    for value in (7, 513, 64.0, False):
        with pytest.raises(ValueError, match=r"^`length` must be an integer in \[8, 512\]. Received: length="):
            check_int_in_range("length", value, 8, 512)


def test_number():
    check_number("rate", 0, "a number in [0, 1)", lambda v: 0 <= v < 1)
    check_number("rate", 0.5, "a number in [0, 1)", lambda v: 0 <= v < 1)
    for value in (1.0, -0.1, math.nan, True, "0.5"):
        with pytest.raises(ValueError, match=r"^`rate` must be a number in \[0, 1\). Received: rate="):
            check_number("rate", value, "a number in [0, 1)", lambda v: 0 <= v < 1)
    with pytest.raises(ValueError, match=r"^`--lr` must be > 0. Received: --lr=-1$"):
        check_number("--lr", -1.0, "> 0", lambda v: v > 0, show=lambda v: f"{v:g}")


def test_is_integer():
    assert is_integer(0) and is_integer(-3)
    assert not is_integer(True) and not is_integer(1.0) and not is_integer("1")
