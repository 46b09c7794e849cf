"""What ``infer.py``'s two halves share: the exit statuses, the checks of
the options every input takes, and the choice of the model. The files are
``infer_command``'s, the streams (``-``, ``--mic``) ``stream_command``'s;
both import this module, neither imports the other."""

import os

from speechmodel import inference
from speechmodel.errors import ParameterError

EXIT_OK = 0
EXIT_FILES_FAILED = 1
EXIT_USAGE = 2
# An error that is not about one file (an internal error, an output that
# cannot be written): nothing is written to --output and an older --output
# file is removed, so that it is never taken for this run's.
EXIT_ERROR = 3


def option_problem(*, output_format, top_k, min_confidence):
    """The usage error in the options that files and streams both take, or
    None."""
    if output_format not in inference.OUTPUT_FORMATS:
        return f"--format must be one of {', '.join(inference.OUTPUT_FORMATS)}. Received: --format={output_format}"
    if not isinstance(top_k, int) or top_k < 1:
        return f"--top_k must be a positive integer. Received: --top_k={top_k}"
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        return f"--min_confidence must be a probability between 0 and 1. Received: --min_confidence={min_confidence}"
    return None


def choose_model(model, default_model, *, top_k, runtime=None, precision="float32"):
    """``(loaded model, None)``, or ``(None, the usage error)``: ``model``
    (a path or a shipped model's name), else ``default_model``, on
    ``runtime`` at ``precision`` (``inference.load_model``); refused when
    it cannot be loaded or has fewer classes than ``top_k``."""
    if model is None:
        if default_model is None:
            return None, "no model: pass --model PATH"
        try:
            missing = not os.path.exists(inference.resolve_model(default_model))
        except inference.ModelError:
            missing = True
        if missing:
            return None, (
                f"the default model {default_model} is missing from this "
                "installation; pass --model PATH to a model.keras written by "
                "train.py"
            )
        model = default_model
    try:
        loaded = inference.load_model(model, runtime=runtime, precision=precision)
    except inference.ModelError as exc:
        return None, f"cannot use the model {exc}"
    except ParameterError as exc:
        return None, str(exc)
    if top_k > len(loaded.class_names):
        return None, (
            f"--top_k is larger than the model's {len(loaded.class_names)} "
            f"classes. Received: --top_k={top_k}"
        )
    return loaded, None
