"""The run's log: the ``speechmodel.run`` logger, written to the run's
``train.log`` (:func:`log_file`) and stdout (:func:`say`), in one format
(:data:`FORMAT`, also absl's stderr lines: :func:`plain_console`), TensorFlow's
noise kept out of both (:func:`quiet_tensorflow`), the reporter of a fold
run on its own (:func:`quiet_reporter`), and :func:`count` (``3 epochs``)
for the run's lines."""

import contextlib
import logging as std_logging

# TensorFlow's C++ log lines are quieted by the package (speechmodel/__init__.py).


# The run's own lines: to the run's train.log (and stdout), not to absl's
# stderr handler on the root logger. Library warnings reach train.log
# through the root logger.
_LOG = std_logging.getLogger("speechmodel.run")
_LOG.propagate = False
_LOG.setLevel(std_logging.INFO)


@contextlib.contextmanager
def quiet_tensorflow():
    """TensorFlow's Python warnings (tf.function retracing notes) kept out
    of the run's output and log for the run; its errors still show."""
    logger = std_logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, std_logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


# One format for train.log and the console: time, level, message (no absl
# "I1207 21:52:00.507596 ... train.py:347]" prefix).
FORMAT = "%(asctime)s %(levelname)s %(message)s"


def plain_console():
    """absl's stderr handler (the library's warnings, the corpus summary)
    in :data:`FORMAT`."""
    from absl import logging as absl_logging

    absl_logging.get_absl_handler().setFormatter(std_logging.Formatter(FORMAT))


class _QuietFileHandler(std_logging.FileHandler):
    """A log file whose write errors (a full disk) print no traceback: the
    run reports the full disk itself, in one line."""

    def handleError(self, record):
        pass


@contextlib.contextmanager
def log_file(path):
    handler = _QuietFileHandler(path, encoding="utf-8")
    handler.setFormatter(std_logging.Formatter(FORMAT))
    root = std_logging.getLogger()
    root.addHandler(handler)
    _LOG.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        _LOG.removeHandler(handler)
        handler.close()


def say(message, to_stdout):
    _LOG.info(message)
    if to_stdout:
        print(message, flush=True)


def quiet_reporter():
    from speechmodel.progress import Reporter

    return Reporter(lambda message: _LOG.info(message))


def count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"
