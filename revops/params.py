"""Scalars from untrusted input (RPC parameters, option values, stored overrides): one parser per type.

Only ASCII digits count (Python's int() and float() also take '١٢٣', '²' or '1_000'); numbers are finite and
short (no 4,300-digit conversion limit reached); booleans are JSON true/false or the words lightningd's bool
options take. Each parser raises ValueError, which callers turn into an error naming their field. `shown`
bounds how much of a bad value an error message echoes.
"""
from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

MAX_SHOWN = 40
_INT = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?", re.ASCII)
TRUE_WORDS = ("true", "yes")
FALSE_WORDS = ("false", "no")
BOOL_TEXT = "true, false, yes or no (any case)"


def shown(value: Any) -> str:
    """repr(value), cut to MAX_SHOWN characters with the full length noted."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text):,} characters)"


def to_int(value: Any) -> int:
    """A JSON integer, an integral float, or a string of at most 20 ASCII digits (optional sign)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    raise ValueError("not an integer")


def int_within(value: Any, lo: int, hi: int) -> int | None:
    """The integer `value` stands for when it lies in [lo, hi]; None otherwise (the caller names the field)."""
    try:
        n = to_int(value)
    except ValueError:
        return None
    return n if lo <= n <= hi else None


def to_float(value: Any) -> float:
    """A finite JSON number or a decimal string in ASCII digits."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        result = float(value) if abs(value) < 1 << 1000 else math.inf
    elif isinstance(value, float):
        result = value
    elif isinstance(value, str) and _FLOAT.fullmatch(value):
        result = float(value)
    else:
        raise ValueError("not a number")
    if not math.isfinite(result):
        raise ValueError("not a finite number")
    return result


def to_bool(value: Any) -> bool:
    """JSON true/false, or one of the words lightningd accepts for a plugin bool option (since v25.05)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.lower() in TRUE_WORDS + FALSE_WORDS:
        return value.lower() in TRUE_WORDS
    raise ValueError("not a boolean")


def number(lo: float, *, integer: bool = False, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type for the command line: a finite number (an integer when asked) >= lo, > lo if lo_open."""
    kind = "integer" if integer else "number"
    bound = f"{'>' if lo_open else '>='} {lo:g}"

    def parse(text: str) -> float:
        try:
            value: float = to_int(text) if integer else to_float(text)
        except ValueError:
            value = math.nan
        if not lo <= value or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a finite {kind} {bound}")
        return value
    return parse


class Parser(argparse.ArgumentParser):
    """argparse with the defaults in --help and one-line errors (no usage block)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
