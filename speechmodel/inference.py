"""Emotions for anyone's recordings: the logic behind ``infer.py``.

The steps, each usable alone:

1. ``collect_inputs``: files, directories (walked recursively for audio
   extensions), glob patterns (expanded here too, for shells that do not)
   and list files (one path per line) -> the files to analyse, plus the
   inputs that cannot be (missing paths, patterns that match nothing,
   directories without audio).
2. ``load_model``: a ``.keras`` ``EmotionRecognizer`` written by ``train.py``
   (loaded with ``safe_mode=True``: nothing from the file executes) or a
   classical scikit-learn model archive (``.skz``, see
   ``speechmodel.classical.persistence``). The kind is read from the
   file's content; anything else is a ``ModelError`` that says what the
   file is.
3. ``Predictor.predict``: every file becomes a ``Prediction`` or a
   ``Failure`` (one line naming the file and the reason; the other files go
   on).

   * Utterances (files up to ``max_utterance`` seconds, 20 s by default)
     are analysed whole, as the model was trained: they go through
     ``speechmodel.pipeline.make_dataset`` (parallel decoding, the batched
     log-mel segments) in batches of ``batch_size`` files, sorted by
     duration so that a batch pads little, and one compiled classifier
     call per batch.
   * Longer recordings are streamed block by block
     (``speechmodel.audio.iter_blocks``; memory stays bounded whatever the
     length) and analysed in windows of ``window`` seconds every ``hop``
     seconds, giving an emotion timeline. The last window ends at the end
     of the file (it is shorter, at least ``window - hop`` seconds). The
     overall result is the mean of the window probabilities weighted by
     each window's voiced seconds (``VoicingDetector``: 32 ms frames every
     40 ms whose normalised autocorrelation peaks at a pitch period of
     60-400 Hz). Voicing does not depend on loudness, so quiet emotions
     count as much as loud ones, while silence, pauses and noise barely
     count (periodic sounds such as music or mains hum do count). A file
     without a voiced frame gets the plain mean (``weighting`` says which
     was used).

4. ``format_table`` / ``format_json`` / ``format_csv`` render a ``Report``;
   ``write_text`` writes atomically; ``plot_prediction`` draws the log-mel
   spectrogram with the timeline (long files) or the probabilities (clips).

``run`` is the whole command line: it returns the exit status (0: every file
succeeded, 1: some files failed and the others were processed, 2: usage
error, no input, or a model that cannot be used, 3: an error that is not
about one file, such as an internal error or an output that cannot be
written).

What is guaranteed: whatever a file holds, it is analysed or reported on
its own line with its name and the reason, and the other files go on (a
file name need not be UTF-8: it is reported as the bytes it has). Nothing
of the user's is overwritten: an ``--output`` that is one of the inputs or
any existing audio file is refused before any work, and so is a location
that cannot be written; a plot never replaces a file this run did not
create (a free name is taken, and said); a folder that cannot be read is
reported, never skipped silently; a plot that cannot be written keeps the
emotion result. After an error that is not about one file, no ``--output``
is left from an earlier run.
"""

import dataclasses
import errno
import glob
import io
import json
import math
import os
import sys
import zipfile

import numpy as np

from speechmodel.audio import AUDIO_EXTENSIONS  # the one list of audio endings
from speechmodel.errors import Error

# The shipped model used without --model: a name of speechmodel.presets
# ("default", "fast"), resolved to the package's file by load_model.
DEFAULT_MODEL = "default"
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")

EXIT_OK = 0
EXIT_FILES_FAILED = 1
EXIT_USAGE = 2
# An error that is not about one file (an internal error, an output that
# cannot be written): nothing is written to --output and an older --output
# file is removed, so that it is never taken for this run's.
EXIT_ERROR = 3

# Voicing (for weighting the windows of a long file), see VoicingDetector.
VOICING_THRESHOLD = 0.4
VOICING_FLOOR_DB = -80.0
# At most this many spectrogram columns are kept for the plot of a long file.
_PLOT_COLUMNS = 3000


class ModelError(Error, ValueError):
    """A model file that cannot be used: names the file and the problem."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# ---------------------------------------------------------------------------
# Results.


@dataclasses.dataclass
class Failure:
    """A file (or input) that could not be analysed, and why."""

    file: str
    reason: str

    def to_dict(self):
        return {"file": self.file, "error": self.reason}


@dataclasses.dataclass
class Segment:
    """One model segment: its span in seconds and its attention weight."""

    start: float
    end: float
    weight: float

    def to_dict(self):
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "weight": round(float(self.weight), 6),
        }


@dataclasses.dataclass
class Window:
    """One analysis window of a long recording.

    Attributes:
        start, end: seconds from the start of the file.
        probabilities: float (C,) class probabilities.
        voiced: fraction of the window's voicing frames that are voiced.
        attention: list of Segment (absolute times) or None.
    """

    start: float
    end: float
    probabilities: np.ndarray
    voiced: float
    class_names: list
    attention: list = None

    @property
    def label(self):
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self):
        return float(np.max(self.probabilities))

    def to_dict(self):
        out = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "probabilities": _probabilities_dict(self.probabilities, self.class_names),
            "voiced": round(float(self.voiced), 4),
        }
        if self.attention is not None:
            out["attention"] = [s.to_dict() for s in self.attention]
        return out


@dataclasses.dataclass
class Prediction:
    """The emotion of one file.

    Attributes:
        file: the path, as given.
        probabilities: float (C,); for a windowed file the weighted mean of
            the window probabilities.
        class_names: the C class names.
        duration: seconds.
        timeline: list of Window for a windowed (long) file, else None.
        weighting: how the windows were averaged (``"voiced"`` or
            ``"uniform"``), None for a clip.
        attention: list of Segment for a clip analysed with attention.
        plot: the PNG written for the file, if any.
        plot_error: why the plot asked for could not be written (the
            emotion result stands).
    """

    file: str
    probabilities: np.ndarray
    class_names: list
    duration: float
    timeline: list = None
    weighting: str = None
    attention: list = None
    plot: str = None
    plot_error: str = None

    @property
    def label(self):
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self):
        return float(np.max(self.probabilities))

    @property
    def windowed(self):
        return self.timeline is not None

    def top_k(self, k):
        """The k most probable classes as ``[(name, probability), ...]``."""
        order = np.argsort(-np.asarray(self.probabilities), kind="stable")[:k]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, *, top_k=1):
        out = {
            "file": self.file,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "probabilities": _probabilities_dict(self.probabilities, self.class_names),
            "top_k": [
                {"label": name, "probability": round(p, 6)}
                for name, p in self.top_k(top_k)
            ],
            "duration": round(self.duration, 3),
            "windowed": self.windowed,
        }
        if self.attention is not None:
            out["attention"] = [s.to_dict() for s in self.attention]
        if self.timeline is not None:
            out["weighting"] = self.weighting
            out["timeline"] = [w.to_dict() for w in self.timeline]
        if self.plot is not None:
            out["plot"] = self.plot
        if self.plot_error is not None:
            out["plot_error"] = self.plot_error
        return out


@dataclasses.dataclass
class Report:
    """What ``Predictor.predict`` returns.

    Attributes:
        results: one Prediction or Failure per file, in the order given.
        class_names: the model's classes.
        settings: the analysis settings (for the JSON output).
    """

    results: list
    class_names: list
    settings: dict = dataclasses.field(default_factory=dict)

    @property
    def predictions(self):
        return [r for r in self.results if isinstance(r, Prediction)]

    @property
    def failures(self):
        return [r for r in self.results if isinstance(r, Failure)]


def _probabilities_dict(probabilities, class_names):
    return {c: round(float(p), 6) for c, p in zip(class_names, probabilities)}


# ---------------------------------------------------------------------------
# Inputs.


@dataclasses.dataclass
class Inputs:
    """The files to analyse and the inputs that gave none."""

    paths: list
    failures: list


def _has_magic(text):
    return any(c in text for c in "*?[")


def _is_audio_name(path, extensions):
    return path.lower().endswith(tuple(e.lower() for e in extensions))


def _walk(directory, extensions, unreadable=None):
    """The audio files under ``directory``; the folders that cannot be read
    are appended to ``unreadable`` as ``(folder, reason)``."""
    found = []

    def onerror(exc):
        if unreadable is not None:
            reason = exc.strerror or str(exc)
            if isinstance(exc, PermissionError):
                reason = "permission denied"
            unreadable.append((exc.filename or directory, reason))

    for root, dirs, files in os.walk(directory, onerror=onerror):
        dirs.sort()
        for name in sorted(files):
            if _is_audio_name(name, extensions):
                found.append(os.path.join(root, name))
    return found


def read_list_file(path):
    """The entries of a list file: one path per line; blank lines and lines
    starting with ``#`` are skipped; a relative path is relative to the
    list file's directory.

    Raises:
        ValueError: the list file cannot be read (names it and why).
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ValueError(f"list file not found. Received: --list={path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"cannot read the list file ({exc}). Received: --list={path}"
        ) from None
    base = os.path.dirname(path)
    entries = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = os.path.expanduser(entry)
        entries.append(entry if os.path.isabs(entry) else os.path.join(base, entry))
    return entries


def collect_inputs(inputs=(), *, list_files=(), extensions=AUDIO_EXTENSIONS):
    """Resolves command-line inputs to the files to analyse.

    Args:
        inputs: paths, directories and glob patterns. A directory is
            walked recursively for files with one of ``extensions`` (case
            insensitive). A file given explicitly (or matched by a pattern)
            is analysed whatever its extension, so a non-audio file is
            reported rather than ignored. A pattern (``*``, ``?``, ``[``,
            and ``**`` for any depth) is expanded when no file has that
            exact name.
        list_files: files listing one input per line (see
            ``read_list_file``).
        extensions: the audio extensions looked for in directories.

    Returns:
        Inputs ``(paths, failures)``: the files in the order given, each
        once; failures for missing paths, patterns matching nothing and
        directories holding no audio.

    Raises:
        ValueError: a list file cannot be read.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if isinstance(list_files, (str, os.PathLike)):
        list_files = [list_files]
    entries = [os.fspath(i) for i in inputs]
    for list_file in list_files:
        entries.extend(read_list_file(list_file))
    paths, failures, seen = [], [], set()

    def add(path):
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            paths.append(path)

    def add_directory(directory):
        unreadable = []
        found = _walk(directory, extensions, unreadable)
        for folder, reason in unreadable:  # Never skipped without a word.
            failures.append(
                Failure(folder, f"cannot read this directory ({reason}): its files were not searched")
            )
        if not found and not unreadable:
            failures.append(
                Failure(
                    directory,
                    "no audio files in this directory (looked for "
                    f"{', '.join(extensions)}, recursively)",
                )
            )
        for path in found:
            add(path)

    for entry in entries:
        if os.path.isdir(entry):
            add_directory(entry)
        elif os.path.lexists(entry):
            add(entry)
        elif _has_magic(entry):
            matches = sorted(glob.glob(os.path.expanduser(entry), recursive=True))
            if not matches:
                failures.append(Failure(entry, "no file matches this pattern"))
            for match in matches:
                if os.path.isdir(match):
                    add_directory(match)
                else:
                    add(match)
        else:
            from speechmodel.audio import path_problem

            problem = path_problem(entry)  # Not found, or why not.
            failures.append(Failure(entry, problem.reason if problem else "file not found"))
    return Inputs(paths, failures)


# ---------------------------------------------------------------------------
# Models.


class InferenceModel:
    """A loaded model, ready for ``Predictor``.

    Attributes:
        path: the file it was loaded from.
        kind: ``"keras"`` or ``"classical"``.
        class_names: the output classes.
        sample_rate: the rate audio is analysed at.
    """

    kind = None
    path = None
    class_names = ()
    sample_rate = 16000

    @property
    def has_attention(self):
        return False

    def describe(self):
        return {"path": self.path, "kind": self.kind, "class_names": list(self.class_names)}


def takes_waveforms(classifier):
    """Whether a classifier takes ``{"waveforms", "lengths"}`` (a model on a
    pretrained speech front end) rather than log-mel segments."""
    from speechmodel.models.recognizer import takes_waveforms as check

    return check(classifier)


class KerasInferenceModel(InferenceModel):
    """An ``EmotionRecognizer``: batched segments through its classifier."""

    kind = "keras"

    def __init__(self, recognizer, path=None):
        import tensorflow as tf

        from speechmodel import features as F

        self.recognizer = recognizer
        self.path = None if path is None else str(path)
        self.classifier = recognizer.classifier
        self.config = recognizer.features
        self.sample_rate = self.config.sample_rate
        n_outputs = int(recognizer.outputs[0].shape[-1])
        names = list(recognizer.class_names) or [f"class_{i}" for i in range(n_outputs)]
        self.class_names = names
        self._tf = tf
        self._attention_net = None
        segment_spec = {
            "segments": tf.TensorSpec([None, None, *self.config.segment_shape], tf.float32),
            "mask": tf.TensorSpec([None, None], tf.bool),
        }
        config = self.config
        # A classifier on a pretrained speech front end (Whisper) takes the
        # waveforms itself; the others take log-mel segments.
        self.takes_waveforms = takes_waveforms(self.classifier)

        def classify(x, attention, counts):
            if attention:
                out = self._attention_network()(x, training=False)
                return out["probabilities"], out["attention"]
            out = self.classifier(x, training=False)
            if isinstance(out, dict):
                out = out["probabilities"]
            return out, tf.zeros([tf.shape(counts)[0], tf.reduce_max(counts)], tf.float32)

        def make(attention):
            @tf.function(input_signature=[segment_spec])
            def from_segments(x):
                counts = tf.reduce_sum(tf.cast(x["mask"], tf.int32), axis=1)
                return classify(x, attention, counts)

            @tf.function(
                input_signature=[
                    tf.TensorSpec([None, None], tf.float32),
                    tf.TensorSpec([None], tf.int32),
                ]
            )
            def from_waveforms(waveforms, lengths):
                if self.takes_waveforms:
                    frames = 1 + tf.maximum(lengths, 1) // config.hop_length
                    counts = tf.cast(F.num_segments(frames, config=config), tf.int32)
                    x = {"waveforms": waveforms, "lengths": lengths}
                    probs, weights = classify(x, attention, counts)
                    return probs, weights, counts
                segments, counts = F.batch_segment_features(
                    waveforms, lengths, config=config
                )
                mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
                probs, weights = classify({"segments": segments, "mask": mask}, attention, counts)
                return probs, weights, counts

            return from_segments, from_waveforms

        self._functions = {False: make(False), True: make(True)}

    @property
    def has_attention(self):
        return callable(getattr(self.classifier, "attention_model", None))

    def _attention_network(self):
        if self._attention_net is None:
            self._attention_net = self.classifier.attention_model()
        return self._attention_net

    def predict_files(self, paths, *, batch_size, attention, on_failure):
        """Yields ``(index, probabilities, attention or None, n_segments)``
        for each file of ``paths`` that loads; ``on_failure(index, reason)``
        for the others."""
        from speechmodel.pipeline import FailureLog, make_dataset

        if not paths:
            return
        if attention:
            self._attention_network()  # Built eagerly, outside the trace.
        from_segments, from_waveforms = self._functions[bool(attention)]
        failures = FailureLog()
        position = {p: i for i, p in enumerate(paths)}
        reported = 0
        dataset = make_dataset(
            paths,
            config=self.config,
            batch_size=batch_size,
            with_index=True,
            failures=failures,
            outputs="waveforms" if self.takes_waveforms else "segments",
        )
        for x, index in dataset:
            if self.takes_waveforms:
                probs, weights, counts = from_waveforms(x["waveforms"], x["lengths"])
                counts = counts.numpy()
            else:
                probs, weights = from_segments(x)
                counts = x["mask"].numpy().sum(axis=1)
            probs, weights = probs.numpy(), weights.numpy()
            for row, i in enumerate(index.numpy()):
                n = int(counts[row])
                yield int(i), probs[row], (weights[row, :n] if attention else None), n
            while reported < len(failures):
                path, reason = failures.failures[reported]
                on_failure(position[path], reason)
                reported += 1
        for path, reason in failures.failures[reported:]:
            on_failure(position[path], reason)

    def predict_waveforms(self, waveforms, lengths, *, attention):
        """(B, S) zero-padded waveforms -> (probabilities (B, C), attention
        list of (n_b,) arrays or None)."""
        if attention:
            self._attention_network()
        from_waveforms = self._functions[bool(attention)][1]
        probs, weights, counts = from_waveforms(
            self._tf.constant(waveforms, self._tf.float32),
            self._tf.constant(lengths, self._tf.int32),
        )
        probs = probs.numpy()
        if not attention:
            return probs, None
        weights, counts = weights.numpy(), counts.numpy()
        return probs, [weights[b, : counts[b]] for b in range(len(probs))]

    def segment_times(self, n_segments, duration):
        """(start, end) seconds of the ``n_segments`` segments of an
        utterance of ``duration`` seconds."""
        frame = self.config.hop_length / self.config.sample_rate
        spans = []
        for n in range(n_segments):
            start = n * self.config.segment_hop * frame
            end = min(duration, start + self.config.segment_frames * frame)
            spans.append((start, max(start, end)))
        return spans


class ClassicalInferenceModel(InferenceModel):
    """A classical scikit-learn model on utterance statistics."""

    kind = "classical"

    def __init__(self, model, path=None, *, n_jobs=2):
        self.model = model
        self.path = None if path is None else str(path)
        self.class_names = list(model.class_names)
        self.sample_rate = model.feature_config.sample_rate
        self.n_jobs = n_jobs

    def predict_files(self, paths, *, batch_size, attention, on_failure):
        del batch_size, attention
        if not paths:
            return
        result = self.model.predict_proba_paths(paths, n_jobs=self.n_jobs)
        for failure in result.failures:
            on_failure(failure.index, failure.reason)
        for row, i in enumerate(result.kept):
            yield int(i), result.probabilities[row].astype(np.float32), None, 0

    def predict_waveforms(self, waveforms, lengths, *, attention):
        from speechmodel.classical.features import compute_features

        del attention
        rows = [
            compute_features(waveforms[b, : lengths[b]], config=self.model.feature_config)
            for b in range(len(lengths))
        ]
        return self.model.predict_proba(np.stack(rows)).astype(np.float32), None


def _zip_names(path):
    try:
        with zipfile.ZipFile(path) as zf:
            return set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(path, f"corrupt model archive ({exc})") from None


def _resolve_model(spec):
    """A shipped model's name (``default``, ``fast``) -> its file; a run
    directory -> its ``model.keras``; anything else as it is."""
    from speechmodel import presets

    spec = os.fspath(spec)
    try:
        return presets.resolve_model(spec)
    except ValueError:
        return spec


def load_model(path):
    """Loads a model for inference, executing no code from the file.

    Args:
        path: a ``.keras`` file holding an ``EmotionRecognizer`` (what
            ``train.py`` writes as ``model.keras``), a classical model
            archive (``model.skz``), a run directory holding a
            ``model.keras``, or the name of a shipped model
            (``speechmodel.presets``: ``"default"``, ``"fast"``). The kind is
            read from the content.

    Returns:
        KerasInferenceModel or ClassicalInferenceModel.

    Raises:
        ModelError: missing, empty, not a model archive (a truncated
            download, a random file), a Keras model of another kind, or a
            model that fails to load; the message says which.
    """
    path = _resolve_model(path)
    if not os.path.exists(path):
        raise ModelError(path, "model file not found")
    if os.path.isdir(path):
        raise ModelError(
            path,
            "is a directory, not a model file (pass the .keras file written "
            "by train.py; a SavedModel export is for TensorFlow Serving)",
        )
    if os.path.getsize(path) == 0:
        raise ModelError(path, "model file is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        raise ModelError(
            path,
            "not a model of this project: expected a .keras archive written "
            "by train.py (or a classical .skz model); this file is not a zip "
            "archive (a truncated download or another kind of file?)",
        )
    names = _zip_names(path)
    if {"meta.json", "model.skops"} <= names:
        return _load_classical(path)
    if "config.json" in names:
        return _load_keras(path)
    raise ModelError(
        path,
        "not a model of this project: a zip archive without a Keras "
        f"config.json or a classical meta.json. Received entries: {sorted(names)[:6]}",
    )


def _load_classical(path):
    try:
        from speechmodel.classical import persistence
    except ImportError as exc:  # skops missing.
        raise ModelError(path, f"classical models need skops ({exc})") from None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = persistence.load_model(path)
    except ValueError as exc:
        reason = str(exc)
        prefix = f"{path}: "
        raise ModelError(path, reason[len(prefix):] if reason.startswith(prefix) else reason) from None
    except Exception as exc:
        raise ModelError(
            path, f"cannot load the classical model ({type(exc).__name__}: {exc})"
        ) from None
    return ClassicalInferenceModel(model, path)


def _load_keras(path):
    from speechmodel import check_config_size

    try:
        check_config_size(path)  # Before config.json is read.
    except ValueError as exc:
        reason = str(exc)
        raise ModelError(path, reason[len(f"{path}: "):] if reason.startswith(f"{path}: ") else reason) from None
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, OSError, KeyError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(path, f"corrupt .keras archive ({exc})") from None
    class_name = config.get("class_name") if isinstance(config, dict) else None
    if class_name != "EmotionRecognizer":
        raise ModelError(
            path,
            f"a Keras model of another kind ({class_name}), not a speechmodel "
            "EmotionRecognizer; infer.py takes the model.keras that train.py "
            "writes (it holds the audio front end and the class names)",
        )
    import warnings

    import keras

    import speechmodel.layers  # noqa: F401  (registers the serializable classes)
    import speechmodel.models  # noqa: F401
    from speechmodel.models.recognizer import EmotionRecognizer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file.
        message = " ".join(str(exc).split())
        if len(message) > 300:
            message = message[:300] + "..."
        raise ModelError(
            path, f"cannot load the model ({type(exc).__name__}: {message})"
        ) from None
    if not isinstance(model, EmotionRecognizer):
        raise ModelError(
            path,
            f"loads as {type(model).__name__}, not a speechmodel EmotionRecognizer",
        )
    return KerasInferenceModel(model, path)


# ---------------------------------------------------------------------------
# Streaming long files.

class _silenced_stderr:
    """Sends file descriptor 2 to /dev/null for the duration (C libraries'
    own messages); Python's sys.stderr is flushed before and after."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            self._saved = None
        return self

    def __exit__(self, *exc_info):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def _window_starts(total, win, hop):
    """Window spans (start, end) in samples covering ``total`` samples."""
    spans = []
    start = 0
    while True:
        end = min(start + win, total)
        spans.append((start, end))
        if end >= total:
            return spans
        start += hop


def stream_windows(blocks, *, window, hop):
    """Cuts a stream of blocks into windows, in bounded memory.

    Args:
        blocks: iterable of float32 1-D arrays (contiguous audio).
        window: window length in samples.
        hop: samples between window starts (``0 < hop <= window``).

    Yields:
        ``(start, samples)``: the window's first sample and a copy of its
        samples. Windows start every ``hop`` samples; the last one ends at
        the end of the stream (shorter than ``window`` unless it fits
        exactly). Only ``window + len(block)`` samples are held at a time.
    """
    buffer = np.zeros(0, np.float32)
    buffer_start = 0  # Absolute index of buffer[0].
    next_start = 0
    last_end = None
    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, np.float32)])
        while next_start + window <= buffer_start + len(buffer):
            offset = next_start - buffer_start
            yield next_start, buffer[offset : offset + window].copy()
            last_end = next_start + window
            next_start += hop
            drop = min(next_start - buffer_start, len(buffer))
            buffer = buffer[drop:]
            buffer_start += drop
    total = buffer_start + len(buffer)
    if last_end is None or last_end < total:
        offset = next_start - buffer_start
        if total > next_start:
            yield next_start, buffer[offset:].copy()


class VoicingDetector:
    """Which stretches of a stream are voiced speech, block by block.

    Frames of 32 ms every 40 ms of the signal's first difference (a
    pre-emphasis that removes DC and whitens low-frequency noise) are voiced when their Hann-windowed, window-
    corrected, normalised autocorrelation has a peak above ``threshold``
    at a lag of a 60-400 Hz pitch period and their energy is above
    ``floor_db`` dBFS. The measure is independent of the level: a quiet
    voice is as voiced as a loud one; white or brown noise and silence are
    not (a few percent of noise frames pass by chance); periodic sounds
    (music, hum) are.

    Args:
        sample_rate: Hz.
        threshold: autocorrelation peak for voicing, in (0, 1).
        floor_db: frames below this energy (dBFS) are never voiced.

    ``add(block)`` takes consecutive float blocks; ``finish()`` returns the
    bool voicing of every complete frame; frame ``k`` starts at sample
    ``k * hop``.
    """

    def __init__(self, sample_rate, *, threshold=VOICING_THRESHOLD, floor_db=VOICING_FLOOR_DB):
        self.frame = max(8, int(round(0.032 * sample_rate)))
        self.hop = max(1, int(round(0.040 * sample_rate)))
        self.n_fft = 1 << int(np.ceil(np.log2(2 * self.frame)))
        self.lags = (
            max(1, int(sample_rate // 400)),
            min(self.frame - 1, int(np.ceil(sample_rate / 60)) + 1),
        )
        self.threshold = threshold
        self.floor_db = floor_db
        self.window = np.hanning(self.frame).astype(np.float32)
        spectrum = np.fft.rfft(self.window, self.n_fft)
        self.window_correlation = np.fft.irfft(np.abs(spectrum) ** 2, self.n_fft)[: self.lags[1]]
        self.previous = 0.0
        self.buffer = np.zeros(0, np.float32)
        self.offset = 0  # Absolute index of buffer[0].
        self.next = 0  # Absolute start of the next frame.
        self.parts = []

    def add(self, block):
        block = np.asarray(block, np.float32)
        if not block.size:
            return
        emphasised = np.empty_like(block)
        emphasised[0] = block[0] - self.previous
        emphasised[1:] = block[1:] - block[:-1]
        self.previous = float(block[-1])
        self.buffer = np.concatenate([self.buffer, emphasised])
        starts = np.arange(self.next, self.offset + len(self.buffer) - self.frame + 1, self.hop)
        if starts.size:
            index = (starts - self.offset)[:, None] + np.arange(self.frame)[None]
            self.parts.append(self._voiced(self.buffer[index]))
            self.next = int(starts[-1]) + self.hop
        drop = min(self.next - self.offset, len(self.buffer))
        self.buffer = self.buffer[drop:]
        self.offset += drop

    def _voiced(self, frames):
        # No mean removal: the first difference has no DC, and removing a
        # frame's mean would turn a lone click into a "periodic" offset.
        energy_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        spectrum = np.fft.rfft(frames * self.window, self.n_fft, axis=1)
        correlation = np.fft.irfft(np.abs(spectrum) ** 2, self.n_fft, axis=1)[:, : self.lags[1]]
        correlation = correlation / self.window_correlation
        low, high = self.lags
        peak = correlation[:, low:high].max(axis=1) / np.maximum(correlation[:, 0], 1e-20)
        return (peak > self.threshold) & (energy_db > self.floor_db)

    def finish(self):
        return np.concatenate(self.parts) if self.parts else np.zeros(0, bool)


def voiced_frames(waveform, *, sample_rate, **options):
    """``VoicingDetector`` on a whole signal: (bool voicing per frame, hop
    in samples)."""
    detector = VoicingDetector(sample_rate, **options)
    detector.add(waveform)
    return detector.finish(), detector.hop


class _Spectrogram:
    """A time-pooled log-mel spectrogram of a stream, for plots."""

    def __init__(self, config, expected_frames):
        # No per-block top_db clip (it would differ from block to block):
        # the whole spectrogram is clipped once, in finish().
        self.config = config.replace(top_db=None)
        self.top_db = config.top_db or 80.0
        self.pool = max(1, math.ceil(expected_frames / _PLOT_COLUMNS))
        self.rest = None
        self.columns = []

    def add(self, block):
        from speechmodel import features as F

        spec = np.asarray(F.log_mel(block, config=self.config))
        if self.rest is not None:
            spec = np.concatenate([self.rest, spec])
        n = len(spec) // self.pool
        if n:
            self.columns.append(
                spec[: n * self.pool].reshape(n, self.pool, -1).mean(axis=1)
            )
        self.rest = spec[n * self.pool :]

    def finish(self):
        if self.rest is not None and len(self.rest):
            self.columns.append(self.rest.mean(axis=0, keepdims=True))
        if not self.columns:
            return np.zeros((0, self.config.n_mels), np.float32)
        spectrogram = np.concatenate(self.columns)
        return np.maximum(spectrogram, spectrogram.max() - self.top_db)


# ---------------------------------------------------------------------------
# The predictor.


class Predictor:
    """Runs a model over files: clips whole, long recordings in windows.

    Args:
        model: an InferenceModel (``load_model``).
        batch_size: files (or windows) per batch.
        window: window length in seconds for long recordings.
        hop: seconds between window starts (``0 < hop <= window``).
        max_utterance: files longer than this (seconds) are windowed.
        attention: add the attention weight of every segment (models whose
            classifier is a ``SpeechModel``).
        plot_dir: write a PNG per file there (log-mel spectrogram with the
            timeline or the probabilities).
        block_seconds: seconds read at a time from a long file.
        segment: ``"windows"`` (the above) or ``"vad"``: every file is cut
            into utterances at speech boundaries by a voice activity
            detector (``speechmodel.vad``; utterances of at most
            ``max_utterance`` seconds), each classified whole, and the
            file's result is their duration-weighted mean (no emotion
            when no speech is found); see ``speechmodel.stream``.
        vad: the detector for ``segment="vad"``: ``auto`` (Silero when
            installed, else voicing), ``silero`` or ``voicing``.

    Raises:
        ValueError: an option is out of range, or attention is asked of a
            model that has none.
    """

    def __init__(
        self,
        model,
        *,
        batch_size=32,
        window=4.0,
        hop=2.0,
        max_utterance=20.0,
        attention=False,
        plot_dir=None,
        block_seconds=30.0,
        segment="windows",
        vad="auto",
    ):
        if segment not in ("windows", "vad"):
            raise ValueError(f"`segment` must be windows or vad. Received: segment={segment!r}")
        if segment == "vad":
            from speechmodel import vad as vad_module

            if attention:
                raise ValueError(
                    "attention weights are reported for clips and windows, not for "
                    "utterances cut by the VAD. Received: attention=True, segment=vad"
                )
            try:
                vad = vad_module.resolve_detector(vad)
            except vad_module.VADUnavailable as exc:
                raise ValueError(str(exc)) from None
        self.segment = segment
        self.vad = vad
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        if not window > 0:
            raise ValueError(f"`window` must be positive (seconds). Received: window={window!r}")
        if not 0 < hop <= window:
            raise ValueError(
                "`hop` must be positive and at most `window` so that the "
                f"windows cover the recording. Received: hop={hop!r}, window={window!r}"
            )
        if not max_utterance > 0:
            raise ValueError(
                f"`max_utterance` must be positive (seconds). Received: max_utterance={max_utterance!r}"
            )
        if not block_seconds > 0:
            raise ValueError(f"`block_seconds` must be positive. Received: block_seconds={block_seconds!r}")
        if attention and not model.has_attention:
            name = type(getattr(model, "classifier", getattr(model, "model", model))).__name__
            raise ValueError(
                f"attention weights are not available for this model (a {model.kind} "
                f"model, classifier {name}): they exist for SpeechModel "
                "(DCNN-BLSTMwA) classifiers. Received: attention=True"
            )
        self.model = model
        self.batch_size = batch_size
        self.window = float(window)
        self.hop = float(hop)
        self.max_utterance = float(max_utterance)
        self.attention = bool(attention)
        self.plot_dir = None if plot_dir is None else os.fspath(plot_dir)
        self.block_seconds = float(block_seconds)
        self._plot_names = set()

    @property
    def settings(self):
        if self.segment == "vad":
            from speechmodel.stream import StreamAnalyzer

            return StreamAnalyzer(
                None, sample_rate=self.model.sample_rate, class_names=self.model.class_names,
                segment="vad", vad=self.vad, max_utterance=self.max_utterance,
            ).settings
        return {
            "window": self.window,
            "hop": self.hop,
            "max_utterance": self.max_utterance,
            "sample_rate": self.model.sample_rate,
            "overall": "mean of window probabilities weighted by voiced seconds",
        }

    def predict(self, paths, *, on_failure=None, on_result=None):
        """Analyses files.

        Args:
            paths: audio files (``collect_inputs`` resolves directories,
                patterns and lists).
            on_failure: called with each Failure as it is met.
            on_result: called with each Prediction as it is made.

        Returns:
            Report: a Prediction or Failure per path, in order.
        """
        from speechmodel.audio import AudioError, read_info

        given = [os.fspath(p) for p in paths]
        paths = list(dict.fromkeys(given))  # Each file analysed once.
        results = [None] * len(paths)
        self._plot_names = set()  # Plot names are unique within a call.
        self.plot_renamed = []  # (file, name taken, name used)

        def fail(i, reason):
            results[i] = Failure(paths[i], reason)
            if on_failure is not None:
                on_failure(results[i])

        def done(i, prediction):
            if self.plot_dir is not None and prediction.plot is None and prediction.plot_error is None:
                prediction.plot = self._plot(prediction, None)  # Never raises.
            results[i] = prediction
            if on_result is not None:
                on_result(prediction)

        clips, long_files, durations = [], [], {}
        # libsndfile's decoders print their own diagnostics on stderr when
        # probing a non-audio file (libmpg123: "Cannot read next header");
        # they are silenced here: every problem is reported as a Failure.
        unreadable = []
        with _silenced_stderr():
            for i, path in enumerate(paths):
                try:
                    info = read_info(path)
                except AudioError as exc:
                    unreadable.append((i, exc.reason))
                    continue
                except Exception as exc:  # e.g. permissions: named, never fatal.
                    unreadable.append((i, f"cannot read the file ({type(exc).__name__}: {exc})"))
                    continue
                durations[i] = info.duration
                long = self.segment == "vad" or info.duration > self.max_utterance
                (long_files if long else clips).append(i)
        for i, reason in unreadable:  # Reported once stderr is back.
            fail(i, reason)

        clips.sort(key=lambda i: durations[i])
        clip_paths = [paths[i] for i in clips]
        outputs = self.model.predict_files(
            clip_paths,
            batch_size=self.batch_size,
            attention=self.attention,
            on_failure=lambda j, reason: fail(clips[j], reason),
        )
        for j, probs, weights, n_segments in outputs:
            i = clips[j]
            duration = durations[i]
            attention = None
            if weights is not None:
                spans = self.model.segment_times(n_segments, duration)
                attention = [Segment(s, e, w) for (s, e), w in zip(spans, weights)]
            done(
                i,
                Prediction(
                    paths[i], np.asarray(probs, np.float32), list(self.model.class_names),
                    duration, attention=attention,
                ),
            )

        for i in long_files:
            try:
                prediction = self._predict_long(paths[i], durations[i])
            except AudioError as exc:
                fail(i, exc.reason)
                continue
            except Exception as exc:  # Named with the file; the others go on.
                fail(i, f"analysis failed ({type(exc).__name__}: {exc})")
                continue
            done(i, prediction)
        for i, result in enumerate(results):
            if result is None:  # Never silent, even if a backend misses one.
                fail(i, "no result was produced for this file (internal error)")
        by_path = dict(zip(paths, results))
        return Report([by_path[p] for p in given], list(self.model.class_names), self.settings)

    def _predict_long(self, path, expected_duration):
        from speechmodel.audio import iter_blocks

        rate = self.model.sample_rate
        win = max(1, int(round(self.window * rate)))
        hop = max(1, int(round(self.hop * rate)))
        voicing = VoicingDetector(rate)
        spectrogram = None
        if self.plot_dir is not None:
            config = getattr(self.model, "config", None)
            if config is None:
                from speechmodel.config import FeatureConfig

                config = FeatureConfig(sample_rate=rate)
            spectrogram = _Spectrogram(config, expected_duration * 100)
        if self.segment == "vad":  # Utterances at speech boundaries.
            from speechmodel import stream

            analyzer = stream.StreamAnalyzer(
                stream.waveform_classifier(self.model, batch_size=self.batch_size),
                sample_rate=rate, class_names=self.model.class_names, segment="vad",
                vad=self.vad, max_utterance=self.max_utterance,
            )
            blocks = iter_blocks(path, sample_rate=rate, block_seconds=self.block_seconds)
            if spectrogram is not None:
                blocks = (spectrogram.add(b) or b for b in blocks)
            prediction = stream.analyze_blocks(blocks, analyzer, path)
            if spectrogram is not None:
                prediction.plot = self._plot(prediction, spectrogram.finish())
            return prediction
        total = [0]

        def blocks():
            for block in iter_blocks(path, sample_rate=rate, block_seconds=self.block_seconds):
                total[0] += len(block)
                voicing.add(block)
                if spectrogram is not None:
                    spectrogram.add(block)
                yield block

        spans, probabilities, attention = [], [], []
        pending = []

        def flush():
            lengths = np.array([len(w) for _, w in pending], np.int32)
            batch = np.zeros((len(pending), int(lengths.max())), np.float32)
            for b, (_, w) in enumerate(pending):
                batch[b, : len(w)] = w
            probs, weights = self.model.predict_waveforms(
                batch, lengths, attention=self.attention
            )
            for b, (start, w) in enumerate(pending):
                spans.append((start, start + len(w)))
                probabilities.append(probs[b])
                attention.append(None if weights is None else weights[b])
            pending.clear()

        for start, samples in stream_windows(blocks(), window=win, hop=hop):
            pending.append((start, samples))
            if len(pending) == self.batch_size:
                flush()
        if pending:
            flush()
        duration = total[0] / rate
        voiced, frame_hop = voicing.finish(), voicing.hop
        names = list(self.model.class_names)
        timeline, weights = [], []
        for (start, end), probs, seg_weights in zip(spans, probabilities, attention):
            # The frames starting inside the window.
            window_voiced = voiced[-(-start // frame_hop) : -(-end // frame_hop)]
            fraction = float(window_voiced.mean()) if window_voiced.size else 0.0
            weights.append(fraction * (end - start) / rate)
            segments = None
            if seg_weights is not None:
                local = self.model.segment_times(len(seg_weights), (end - start) / rate)
                segments = [
                    Segment(start / rate + s, start / rate + e, w)
                    for (s, e), w in zip(local, seg_weights)
                ]
            timeline.append(
                Window(start / rate, end / rate, np.asarray(probs, np.float32), fraction, names, segments)
            )
        weights = np.asarray(weights, np.float64)
        stacked = np.stack([w.probabilities for w in timeline]).astype(np.float64)
        if weights.sum() > 0:
            overall, weighting = (weights[:, None] * stacked).sum(0) / weights.sum(), "voiced"
        else:
            overall, weighting = stacked.mean(axis=0), "uniform"
        prediction = Prediction(
            path, overall.astype(np.float32), names, duration, timeline=timeline, weighting=weighting
        )
        if spectrogram is not None:
            prediction.plot = self._plot(prediction, spectrogram.finish())
        return prediction

    def _save_plot(self, file, data):
        """Writes the PNG under the first free name (``<stem>.png``, then
        ``<stem>-2.png``, ...): never over a file this run did not create
        (an existing name is skipped, and recorded in ``plot_renamed``)."""
        stem = os.path.splitext(os.path.basename(file))[0] or "audio"
        wanted, n = None, 1
        while True:
            name = stem if n == 1 else f"{stem}-{n}"
            n += 1
            if name in self._plot_names:
                continue
            self._plot_names.add(name)
            target = os.path.join(self.plot_dir, name + ".png")
            try:
                write_bytes(data, target, overwrite=False)
            except FileExistsError:
                wanted = wanted or target
                continue
            if wanted is not None:
                self.plot_renamed.append((file, wanted, target))
            return target

    def _plot(self, prediction, spectrogram):
        """Draws and writes the plot of ``prediction``: its path, or None
        with ``prediction.plot_error`` saying why not (the result stands)."""
        try:
            if spectrogram is None:
                from speechmodel import features as F
                from speechmodel.audio import load_audio

                config = getattr(self.model, "config", None)
                if config is None:
                    from speechmodel.config import FeatureConfig

                    config = FeatureConfig(sample_rate=self.model.sample_rate)
                waveform = load_audio(prediction.file, sample_rate=config.sample_rate)
                spectrogram = np.asarray(F.log_mel(waveform, config=config))
            return self._save_plot(prediction.file, render_plot(prediction, spectrogram))
        except Exception as exc:  # A full disk, say: the emotion result stands.
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            prediction.plot_error = f"the plot could not be written ({type(exc).__name__}: {reason})"
            return None


def predict(paths, model, **options):
    """``Predictor(model, **options).predict(paths)``; ``model`` may be a path."""
    if not isinstance(model, InferenceModel):
        model = load_model(model)
    return Predictor(model, **options).predict(paths)


# ---------------------------------------------------------------------------
# Plots.


def plot_prediction(prediction, spectrogram, path):
    """Writes a PNG: the log-mel spectrogram (time x mels, dB) over the
    emotion timeline (windowed files) or the probability bars (clips),
    with the attention weights over the spectrogram when present."""
    write_bytes(render_plot(prediction, spectrogram), path)


def render_plot(prediction, spectrogram):
    """The PNG bytes of ``plot_prediction``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = prediction.class_names
    duration = max(prediction.duration, 1e-3)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 2]}
    )
    spectrogram = np.asarray(spectrogram)
    if spectrogram.size:
        top.imshow(
            spectrogram.T, origin="lower", aspect="auto", cmap="magma",
            extent=[0, duration, 0, spectrogram.shape[1]],
        )
    top.set_ylabel("mel band")
    top.set_xlim(0, duration)
    top.set_title(
        f"{os.path.basename(prediction.file)}: {prediction.label} "
        f"({prediction.confidence:.2f})"
        if prediction.probabilities is not None
        else f"{os.path.basename(prediction.file)}: no speech"
    )
    if prediction.attention:
        twin = top.twinx()
        centres = [(s.start + s.end) / 2 for s in prediction.attention]
        twin.plot(centres, [s.weight for s in prediction.attention], "c.-", label="attention")
        twin.set_ylabel("attention")
        twin.set_ylim(bottom=0)
    if prediction.timeline:
        from matplotlib.colors import ListedColormap

        colors = [plt.cm.tab10(c % 10) for c in range(len(names))]
        centres = np.array([(w.start + w.end) / 2 for w in prediction.timeline])
        probs = np.stack([w.probabilities for w in prediction.timeline])
        # Background: the winning emotion from each window's start to the
        # next window's start.
        edges = [w.start for w in prediction.timeline] + [prediction.timeline[-1].end]
        bottom.pcolormesh(
            edges, [0, 1], np.argmax(probs, axis=1)[None].astype(float),
            cmap=ListedColormap(colors), vmin=-0.5, vmax=len(names) - 0.5,
            alpha=0.2, shading="flat",
        )
        for c, name in enumerate(names):
            bottom.plot(centres, probs[:, c], color=colors[c], label=name)
        bottom.set_xlim(0, duration)
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("time (s)")
        bottom.set_ylabel("probability")
        bottom.legend(fontsize=7, ncol=min(4, len(names)), loc="upper right")
    else:
        top.set_xlabel("time (s)")
        bars = prediction.probabilities
        bottom.bar(range(len(names)), np.zeros(len(names)) if bars is None else bars, color="tab:blue")
        bottom.set_xticks(range(len(names)), names, rotation=30, ha="right")
        bottom.set_ylim(0, 1)
        bottom.set_ylabel("probability")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# Output.


def _seconds(value):
    return f"{value:.2f} s"


def _render_rows(rows):
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(v).ljust(w) for v, w in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_table(report, *, top_k=1, timeline=False):
    """A readable table: one row per analysed file (file, emotion,
    confidence, duration; the top-k classes when ``top_k > 1``; the window
    count of long files). ``timeline=True`` adds a row per window of long
    files; attention adds a row per segment of clips. Failures are not
    listed (they are reported on stderr)."""
    predictions = report.predictions
    header = ["file", "emotion", "confidence", "duration"]
    if top_k > 1:
        header.append(f"top {top_k}")
    any_windowed = any(p.windowed for p in predictions)
    if any_windowed:
        header.append("windows")
    rows = [header]
    extra = {}
    for p in predictions:
        if p.probabilities is None:  # VAD segmentation that found no speech.
            row = [p.file, "no-speech", "-", _seconds(p.duration)]
        else:
            row = [p.file, p.label, f"{p.confidence:.3f}", _seconds(p.duration)]
        if top_k > 1:
            row.append(", ".join(f"{n} {q:.3f}" for n, q in p.top_k(top_k)))
        if any_windowed:
            row.append(str(len(p.timeline)) if p.windowed else "-")
        rows.append(row)
        sub = []
        if p.windowed and timeline:
            for w in p.timeline:
                sub.append(
                    f"    {w.start:8.2f}-{w.end:8.2f} s  {w.label:<12} "
                    f"{w.confidence:.3f}  voiced {w.voiced:.2f}"
                )
        if p.attention is not None:
            for s in p.attention:
                sub.append(f"    segment {s.start:6.2f}-{s.end:6.2f} s  attention {s.weight:.3f}")
        extra[len(rows) - 1] = sub
    lines = []
    for n, line in enumerate(_render_rows(rows)):
        lines.append(line)
        lines.extend(extra.get(n, []))
    return "\n".join(lines) + "\n"


def format_json(report, *, top_k=1, model=None):
    """JSON: ``{"model", "class_names", "settings", "results"}`` where
    ``results`` holds one object per file in input order: ``file``,
    ``label``, ``confidence``, ``probabilities`` (every class), ``top_k``,
    ``duration`` (s), ``windowed``, plus ``timeline`` and ``weighting`` for
    long files and ``attention`` when asked; or ``file`` and ``error`` for
    a file that failed."""
    payload = {
        "model": model,
        "class_names": list(report.class_names),
        "settings": report.settings,
        "results": [
            r.to_dict(top_k=top_k) if isinstance(r, Prediction) else r.to_dict()
            for r in report.results
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


def format_jsonl(report, *, top_k=1):
    """JSON lines: one object per file (as in ``format_json``'s
    ``results``), in input order."""
    return "".join(
        json.dumps(r.to_dict(top_k=top_k) if isinstance(r, Prediction) else r.to_dict()) + "\n"
        for r in report.results
    )


def format_csv(report, *, top_k=1):
    """CSV, one row per file plus, for long files, one per window and, with
    attention, one per segment. Columns: ``file, kind`` (``file``,
    ``window``, ``segment`` or ``error``), ``start, end, duration`` (s),
    ``label, confidence``, ``p_<class>`` for every class, ``top<i>_label,
    top<i>_probability`` when ``top_k > 1``, ``voiced`` (windows: the
    voiced fraction),
    ``attention`` (segments), ``error``."""
    import csv

    names = list(report.class_names)
    header = ["file", "kind", "start", "end", "duration", "label", "confidence"]
    header += [f"p_{c}" for c in names]
    if top_k > 1:
        for i in range(1, top_k + 1):
            header += [f"top{i}_label", f"top{i}_probability"]
    header += ["voiced", "attention", "error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    blank_top = [""] * (2 * top_k if top_k > 1 else 0)

    def row(file, kind, start, end, duration, probs=None, top=None, voiced="", attention="", error=""):
        values = [file, kind, start, end, duration]
        if probs is None:
            values += ["", ""] + [""] * len(names)
        else:
            values += [names[int(np.argmax(probs))], f"{float(np.max(probs)):.6f}"]
            values += [f"{float(p):.6f}" for p in probs]
        if top_k > 1:
            values += blank_top if top is None else [v for n, q in top for v in (n, f"{q:.6f}")]
        values += [voiced, attention, error]
        writer.writerow(values)

    def segments(p_file, items):
        for s in items or []:
            row(p_file, "segment", f"{s.start:.3f}", f"{s.end:.3f}", f"{s.end - s.start:.3f}",
                attention=f"{s.weight:.6f}")

    for r in report.results:
        if isinstance(r, Failure):
            row(r.file, "error", "", "", "", error=r.reason)
            continue
        row(r.file, "file", "0.000", f"{r.duration:.3f}", f"{r.duration:.3f}", r.probabilities,
            r.top_k(top_k) if top_k > 1 and r.probabilities is not None else None,
            error=r.plot_error or "")
        segments(r.file, r.attention)
        for w in r.timeline or []:
            order = np.argsort(-w.probabilities, kind="stable")[:top_k]
            row(r.file, "window", f"{w.start:.3f}", f"{w.end:.3f}", f"{w.end - w.start:.3f}",
                w.probabilities, [(names[i], float(w.probabilities[i])) for i in order] if top_k > 1 else None,
                voiced=f"{w.voiced:.4f}")
            segments(r.file, w.attention)
    return buffer.getvalue()


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(data, path, *, overwrite=True):
    """Writes ``data`` to ``path`` atomically: a temporary file in the same
    directory, renamed into place, so a reader never sees half a file. The
    file gets the usual permissions (an existing file's mode, else 0666
    minus the umask), not the temporary file's 0600.

    With ``overwrite=False`` an existing ``path`` is never replaced
    (``FileExistsError``): the complete file is linked into place, which
    fails if the name is taken, even by a file created meanwhile.
    """
    import tempfile

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "File exists", path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # Fails if the name is taken.
            except FileExistsError:
                raise
            except OSError:  # No hard links here: exclusive create instead.
                with open(path, "xb") as out:
                    out.write(data)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def encode_text(text, encoding="utf-8"):
    """``text`` as bytes; a file name that is not valid in ``encoding`` (a
    Latin-1 name in UTF-8 text) is written as the bytes it has on disk."""
    try:
        return text.encode(encoding, "surrogateescape")
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8", "surrogateescape")


def write_text(text, path):
    """Writes ``text`` (UTF-8; file names as their bytes, see
    ``encode_text``) to ``path`` atomically (see ``write_bytes``)."""
    write_bytes(encode_text(text), path)


# ---------------------------------------------------------------------------
# The command line.


_AUDIO_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3")


def _is_audio_file(path):
    """An existing file that holds audio (by its first bytes: WAV, FLAC,
    Ogg, AIFF, MP3) or has an audio extension."""
    if _is_audio_name(path, AUDIO_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(_AUDIO_MAGIC) or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def check_output(output, *, inputs=(), list_files=()):
    """Why ``output`` cannot be written, or None; checked before any work.

    Refused: a directory; one of the inputs or list files (by the file it
    resolves to, through links); any other existing audio file. Then the
    folder is created if needed and a test file written there, so a
    read-only or missing location fails now rather than after the work.
    """
    output = os.fspath(output)
    if os.path.isdir(output):
        return f"--output is a directory. Received: --output={output}"
    if os.path.exists(output):
        target = os.path.realpath(output)
        for given in list(inputs) + list(list_files):
            if os.path.exists(given) and os.path.samefile(given, output):
                what = "a --list file" if given in list_files else "one of the inputs"
                return (
                    f"--output {output} is {what} ({given}); refusing to overwrite it. "
                    "Choose another --output."
                )
        if os.path.isfile(target) and _is_audio_file(target):
            return (
                f"--output {output} is an existing audio file; refusing to overwrite it "
                "with results. Choose another --output."
            )
    parent = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        return f"cannot create the directory of --output ({exc.strerror or exc}). Received: --output={output}"
    if os.path.exists(output) and not os.path.isfile(output):
        if not os.access(output, os.W_OK):
            return f"cannot write --output (permission denied). Received: --output={output}"
        return None
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in the directory of --output ({exc.strerror or exc}). Received: --output={output}"
    return None


def write_output(text, output):
    """The results to ``output``: atomically for a file (``write_text``);
    a device or pipe (``/dev/stdout``) is written to, never replaced."""
    if os.path.exists(output) and not os.path.isfile(output):
        with open(output, "wb") as f:
            f.write(encode_text(text))
        return
    write_text(text, output)


def _remove_stale_output(output):
    """Removes an earlier results file at ``output`` (so that it is never
    taken for the results of a run that failed); True if one was removed."""
    try:
        if os.path.isfile(output) and not os.path.islink(output) and not _is_audio_file(output):
            os.unlink(output)
            return True
    except OSError:
        pass
    return False


def normalize_flag_names(argv, known):
    """``--top-k=3`` -> ``--top_k=3`` (and ``--no-attention`` ->
    ``--noattention``) for the flags in ``known``, so that both spellings
    work; other arguments, and everything after ``--``, are left alone."""
    known = set(known)
    out = []
    for n, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[n:])
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, sep, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if name in known:
            out.append(f"--{name}{sep}{value}")
        elif name.startswith("no") and name[2:].lstrip("_") in known:
            out.append(f"--no{name[2:].lstrip('_')}{sep}{value}")
        else:
            out.append(arg)
    return out


def run(
    inputs,
    *,
    model=None,
    default_model=None,
    list_files=(),
    output_format="table",
    output=None,
    top_k=1,
    attention=False,
    window=4.0,
    hop=2.0,
    max_utterance=20.0,
    plot_dir=None,
    batch_size=32,
    timeline=False,
    segment="windows",
    vad="auto",
    stream=None,
    stdout=None,
    stderr=None,
    prog="infer.py",
):
    """The ``infer.py`` command: returns the exit status.

    Args:
        inputs: files, directories and patterns (``collect_inputs``).
        model: a model path; None uses ``default_model``.
        default_model: the shipped model's path (``models/
            ravdess_default.keras`` beside ``infer.py``).
        list_files, output_format, output, top_k, attention, window, hop,
            max_utterance, plot_dir, batch_size, timeline, segment, vad: as
            the flags.
        stream: for ``infer.py -`` (``inputs == ["-"]``) and ``--mic``: a
            dict of ``speechmodel.stream.run_cli`` options (``mic``,
            ``device``, ``raw``, ``rate``, ``sample_format``, ``channels``,
            ``max_seconds``); the stream is analysed as it arrives.
        stdout, stderr: streams (default sys.stdout / sys.stderr).

    Returns:
        0 when every file succeeded, 1 when some failed (the others are
        reported) or a plot could not be written (the result is kept), 2
        for a usage error, no input or an unusable model, 3 for an error
        that is not about one file (an internal error, an output that
        cannot be written): no results are written then, and an older
        ``output`` file is removed.

    Every failed input gets one line on ``stderr`` as it is met
    (``infer.py: skipped FILE: REASON``), and a count at the end. In the
    JSON and CSV outputs, the inputs that gave no file (missing paths,
    patterns matching nothing, directories without audio) come first, then
    every file in the order given, failures included with their reason.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr

    def usage(message):
        print(f"{prog}: error: {message}", file=stderr)
        return EXIT_USAGE

    def report_failure(failure):
        print(f"{prog}: skipped {failure.file}: {failure.reason}", file=stderr, flush=True)

    if output_format not in OUTPUT_FORMATS:
        return usage(f"--format must be one of {', '.join(OUTPUT_FORMATS)}. Received: --format={output_format}")
    if not isinstance(top_k, int) or top_k < 1:
        return usage(f"--top_k must be a positive integer. Received: --top_k={top_k}")
    if "-" in list(inputs) or (stream or {}).get("mic"):
        from speechmodel import stream as stream_module

        return stream_module.run_cli(
            list(inputs), model=model, default_model=default_model, list_files=list_files,
            output_format=output_format, output=output, top_k=top_k, attention=attention,
            window=window, hop=hop, max_utterance=max_utterance, plot_dir=plot_dir,
            batch_size=batch_size, segment=segment, vad=vad, stream=stream or {},
            stdout=stdout, stderr=stderr, prog=prog,
        )
    if any((stream or {}).get(k) for k in ("raw", "device", "max_seconds")):
        return usage("--raw, --device and --max_seconds are for a stream: give - (standard input) or --mic")
    try:
        collected = collect_inputs(inputs, list_files=list_files)
    except ValueError as exc:
        return usage(str(exc))
    if not collected.paths:
        for failure in collected.failures:
            report_failure(failure)
        return usage(
            "no audio files to analyse: give files, directories, glob patterns "
            "or --list FILE"
        )
    if output is not None:  # Before any work: refused, or known writable.
        problem = check_output(output, inputs=collected.paths, list_files=list_files)
        if problem:
            return usage(problem)
    if plot_dir is not None:
        try:
            os.makedirs(plot_dir, exist_ok=True)
        except OSError as exc:
            return usage(f"cannot create the --plot directory ({exc}). Received: --plot={plot_dir}")

    if model is None:
        if default_model is None:
            return usage("no model: pass --model PATH")
        if not os.path.exists(_resolve_model(default_model)):
            return usage(
                f"the default model {default_model} is missing from this "
                "installation; pass --model PATH to a model.keras written by "
                "train.py"
            )
        model = default_model
    try:
        loaded = load_model(model)
    except ModelError as exc:
        return usage(f"cannot use the model {exc}")
    if top_k > len(loaded.class_names):
        return usage(
            f"--top_k is larger than the model's {len(loaded.class_names)} "
            f"classes. Received: --top_k={top_k}"
        )
    try:
        predictor = Predictor(
            loaded,
            batch_size=batch_size,
            window=window,
            hop=hop,
            max_utterance=max_utterance,
            attention=attention,
            plot_dir=plot_dir,
            segment=segment,
            vad=vad,
        )
    except ValueError as exc:
        return usage(str(exc))

    def error_exit(message):
        """An error not about one file: one line, exit 3, no stale output."""
        if output is not None and _remove_stale_output(output):
            message += f"; the older {output} was removed so that it is not taken for this run's results"
        print(f"{prog}: error: {message}", file=stderr, flush=True)
        return EXIT_ERROR

    for failure in collected.failures:
        report_failure(failure)
    try:
        report = predictor.predict(collected.paths, on_failure=report_failure)
        report.results = collected.failures + report.results
        if output_format == "json":
            text = format_json(report, top_k=top_k, model=loaded.describe())
        elif output_format == "jsonl":
            text = format_jsonl(report, top_k=top_k)
        elif output_format == "csv":
            text = format_csv(report, top_k=top_k)
        else:
            text = format_table(report, top_k=top_k, timeline=timeline)
    except Exception as exc:  # Not about one file: those are Failures.
        detail = " ".join(str(exc).split())[:300]
        return error_exit(f"internal error, not about one file ({type(exc).__name__}: {detail}); no results were written")
    for file, taken, used in getattr(predictor, "plot_renamed", []):
        print(f"{prog}: {taken} exists and was not written by this run: the plot of {file} is {used}", file=stderr)
    plot_failures = [p for p in report.predictions if p.plot_error]
    for p in plot_failures:
        print(f"{prog}: plot failed for {p.file}: {p.plot_error}; its emotion result is kept", file=stderr)
    if output is not None:
        try:
            write_output(text, output)
        except OSError as exc:
            return error_exit(f"cannot write --output {output} ({exc.strerror or exc}); no results were written")
    else:
        try:
            data = encode_text(text, getattr(stdout, "encoding", None) or "utf-8")
            if hasattr(stdout, "buffer"):
                stdout.flush()
                stdout.buffer.write(data)
            else:
                stdout.write(text)
            stdout.flush()
        except BrokenPipeError:  # e.g. `infer.py ... | head`: not an error.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stdout.fileno())
            except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                pass
        except OSError as exc:
            return error_exit(f"cannot write the results to standard output ({exc.strerror or exc})")
    failed = len(report.failures)
    if failed or plot_failures:
        parts = [f"{failed} of {len(report.results)} inputs failed"] if failed else []
        if plot_failures:
            parts.append(f"{len(plot_failures)} plots could not be written")
        print(f"{prog}: {'; '.join(parts)}; {len(report.predictions)} analysed", file=stderr)
        return EXIT_FILES_FAILED
    return EXIT_OK
