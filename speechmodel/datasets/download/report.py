"""How a download speaks: sizes in words, one line at a time on stderr
(nothing with ``quiet``), and pooch's own log silenced."""

import contextlib
import logging
import sys

import pooch


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    raise AssertionError("unreachable")




def say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def pooch_quiet():
    """Silences pooch's INFO log (its own download and unzip messages)."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
