"""The project's own error types, and the one-line report of them on the command line.

A :class:`PConvError` is bad input from the user (an argument, a config value, a file), not a
bug: commands print its message as one line, ``pconv <command>: error: <message>``, and exit
with status 2, instead of a traceback. Each subclass also derives from the built-in type
that describes it (ValueError, FileNotFoundError, RuntimeError), so callers can catch either.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
EXIT_BAD_INPUT = 2


class PConvError(Exception):
    """Bad input: the message names the argument or file and what was expected."""


class ConfigError(PConvError, ValueError):
    """A command-line argument or config value that cannot work."""


class InputError(PConvError, ValueError):
    """An input file or folder that cannot be used."""


class MissingInputError(InputError, FileNotFoundError):
    """An input file or folder that does not exist."""


class NoReadableImagesError(InputError, RuntimeError):
    """Every image of a source failed to decode."""


def one_line(err: BaseException) -> str:
    """The error's message on one line. An error re-raised from a DataLoader worker carries
    the worker's traceback in its message; its last line holds the original message."""
    lines = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    last = lines[-1] if len(lines) > 1 else lines[0]
    name = f"{type(err).__module__}.{type(err).__qualname__}: "
    return last.removeprefix(name).removeprefix(f"{type(err).__qualname__}: ")


def unwrap_union_error(err: ValueError) -> Exception:
    """jsonargparse reports the error of a class chosen by class path (the data module runs in
    subclass mode) as one of the reasons "Does not validate against any of the Union
    subtypes": that class's own message as a :class:`ConfigError`, else ``err`` itself."""
    text = str(err)
    if "Does not validate against any of the Union subtypes" not in text:
        return err
    reasons = [
        line.strip()[2:]
        for line in text.split("Errors:", 1)[-1].splitlines()
        if line.strip().startswith("- ") and "Expected a <class 'NoneType'>" not in line
    ]
    return ConfigError(reasons[0]) if reasons else err


def report_errors(run: Callable[[], T], prog: str) -> T:
    """``run()``, but a :class:`PConvError` prints ``<prog>: error: <message>`` on stderr
    and exits with status 2."""
    try:
        return run()
    except PConvError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
