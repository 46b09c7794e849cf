"""Emotions for anyone's recordings: the logic behind ``infer.py``.

The steps, each usable alone, each in its own module:

1. ``inputs``: ``collect_inputs`` resolves files, directories (walked
   recursively for audio extensions), glob patterns (expanded here too, for
   shells that do not) and list files (one path per line) to the files to
   analyse, plus the inputs that cannot be (missing paths, patterns that
   match nothing, directories without audio).
2. ``loading``: ``resolve_model`` turns a shipped model's name, a run
   directory or a path into the file; ``load_model`` opens a ``.keras``
   ``EmotionRecognizer``
   written by ``train.py`` (loaded with ``safe_mode=True``: nothing from
   the file executes) or a classical scikit-learn model archive (``.skz``,
   see ``speechmodel.classical.persistence``) as one of the ``backends``
   (``KerasInferenceModel``, ``ClassicalInferenceModel``). The kind is read
   from the file's content; anything else is a ``ModelError`` that says
   what the file is.
3. ``predictor``: ``Predictor.predict`` turns every file into a
   ``Prediction`` or a ``Failure`` (``results``; one line naming the file
   and the reason; the other files go on). Clips are analysed whole, in
   batches; longer recordings are streamed and analysed in windows
   weighted by their voiced seconds (``speechmodel.signal``); with
   ``segment="vad"`` they are cut into utterances by
   ``streaming.StreamAnalyzer``, which also analyses live streams as their
   audio arrives.
4. ``formats``: ``format_table`` / ``format_json`` / ``format_jsonl`` /
   ``format_csv`` render a ``Report``; ``writing.write_text`` writes
   atomically; ``plots.plot_prediction`` draws the log-mel spectrogram
   with the timeline (long files) or the probabilities (clips).

The signal processing (voicing, stream windows, the pooled spectrogram)
lives below, in ``speechmodel.signal``; the command line (``run``, the exit
statuses, ``--output`` checks, flag spellings) above, in ``speechmodel.cli``
(``common``, ``infer_command``, ``flag_names``). Every name this module had when it
was one file is still importable from here.

What is guaranteed: whatever a file holds, it is analysed or reported on
its own line with its name and the reason, and the other files go on (a
file name need not be UTF-8: it is reported as the bytes it has). A plot
never replaces a file this run did not create (a free name is taken, and
said); a folder that cannot be read is reported, never skipped silently; a
plot that cannot be written keeps the emotion result.
"""

import importlib

from speechmodel.inference.backends import (
    ClassicalInferenceModel,
    InferenceModel,
    KerasInferenceModel,
    takes_waveforms,
)
from speechmodel.inference.formats import (
    OUTPUT_FORMATS,
    format_csv,
    format_json,
    format_jsonl,
    format_table,
)
from speechmodel.inference.inputs import Inputs, collect_inputs, read_list_file
from speechmodel.inference.loading import ModelError, load_model, resolve_model
from speechmodel.inference.plots import plot_prediction, render_plot
from speechmodel.inference.predictor import Predictor, predict
from speechmodel.inference.results import Failure, Prediction, Report, Segment, Window, result_dict
from speechmodel.inference.writing import encode_text, write_bytes, write_text
from speechmodel.signal import (
    VOICING_FLOOR_DB,
    VOICING_THRESHOLD,
    VoicingDetector,
    stream_windows,
    voiced_frames,
)

# The command line, kept importable from here for the callers of the
# one-module ``speechmodel.inference``; imported when first asked for, since
# the command sits above this package (it uses it).
_COMMAND_NAMES = {
    "EXIT_OK": "speechmodel.cli.common",
    "EXIT_FILES_FAILED": "speechmodel.cli.common",
    "EXIT_USAGE": "speechmodel.cli.common",
    "EXIT_ERROR": "speechmodel.cli.common",
    "check_output": "speechmodel.cli.infer_command",
    "write_output": "speechmodel.cli.infer_command",
    "run": "speechmodel.cli.infer_command",
    "normalize_flag_names": "speechmodel.cli.flag_names",
}

__all__ = [
    "OUTPUT_FORMATS",
    "VOICING_FLOOR_DB",
    "VOICING_THRESHOLD",
    "ClassicalInferenceModel",
    "Failure",
    "InferenceModel",
    "Inputs",
    "KerasInferenceModel",
    "ModelError",
    "Prediction",
    "Predictor",
    "Report",
    "Segment",
    "VoicingDetector",
    "Window",
    "collect_inputs",
    "encode_text",
    "format_csv",
    "format_json",
    "format_jsonl",
    "format_table",
    "load_model",
    "plot_prediction",
    "predict",
    "read_list_file",
    "render_plot",
    "resolve_model",
    "result_dict",
    "stream_windows",
    "takes_waveforms",
    "voiced_frames",
    "write_bytes",
    "write_text",
    *_COMMAND_NAMES,
]


def __getattr__(name):
    module = _COMMAND_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_COMMAND_NAMES))
