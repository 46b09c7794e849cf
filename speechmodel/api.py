"""The one-line Python API: ``speechmodel.load_model().classify(...)``.

    import speechmodel

    rec = speechmodel.load_model()                 # the shipped "default"
    rec = speechmodel.load_model("fast")           # or a .keras / .skz file, a run directory
    p = rec.classify("clip.wav")                   # p.label, p.confidence, p.probabilities
    ps = rec.classify(["a.wav", "b.flac"])         # one result per input, in order
    p = rec.classify(samples, sample_rate=44100)   # a NumPy array, any rate, mono or channels
    p = rec.classify(open("c.ogg", "rb"))          # bytes or a binary file object
    t = rec.classify("meeting.flac", window=4, hop=2).timeline
    p = rec.classify("clip.wav", min_confidence=0.6)   # p.label "uncertain" below 0.6
    e = rec.embed("clip.wav")                      # utterance embedding (NumPy)
    e, segments = rec.embed("clip.wav", segments=True)

``load_model`` is ``speechmodel.load_model``, the one way to load a model
from Python: the file is opened by ``speechmodel.inference.load_model``
(names and run directories resolved by ``inference.resolve_model``) and
wrapped in a ``Recognizer``. ``classify`` is ``infer.py``: every input goes through
``speechmodel.inference.Predictor`` (its batching, its windows and
voicing-weighted timeline for long audio, its failure reasons), so the
command line and the API give the same probabilities for the same file.
Arrays, bytes and file objects are written to a temporary file first
(float32 WAV at the given rate for arrays) and read by the same loader.

Errors: for ONE input (a ``str`` or ``os.PathLike`` is always one path;
``bytes`` are always the content of an audio file), an input that cannot
be analysed raises ``speechmodel.AudioError`` naming it (``.path``,
``.reason``, ``.kind``). In a list, it becomes a ``speechmodel.Failure``
(``.file``, ``.reason``) in its place and the other inputs are analysed.
"""

import contextlib
import dataclasses
import os
import tempfile

import numpy as np

from speechmodel import audio as audio_lib
from speechmodel import inference
from speechmodel.errors import ParameterError

__all__ = ["Classification", "Recognizer", "TimelineWindow", "load_model"]


def _probabilities(values, class_names):
    return {name: float(p) for name, p in zip(class_names, values)}


@dataclasses.dataclass
class TimelineWindow:
    """One window of the timeline of a long recording.

    Attributes:
        start, end: seconds from the start.
        label, confidence: the most probable emotion (or ``"uncertain"``
            below ``min_confidence``) and its probability.
        probabilities: ``{class name: probability}``, every class.
        voiced: fraction of the window that is voiced (the window's weight
            in the overall result).
    """

    start: float
    end: float
    label: str
    confidence: float
    probabilities: dict
    voiced: float


@dataclasses.dataclass
class Classification:
    """The emotion of one input.

    Attributes:
        source: the path as given, the file object's ``name``, or
            ``<array>``, ``<bytes>``, ``<file object>``.
        label: the most probable emotion; ``"uncertain"`` when its
            probability is below ``classify``'s ``min_confidence``; ``"no
            speech"`` for audio without speech (silence, steady noise).
        confidence: the probability of the most probable emotion.
        probabilities: ``{class name: probability}``, every class in the
            model's order; for a windowed input, the voicing-weighted mean
            of the windows (as ``infer.py``).
        duration: seconds.
        timeline: a list of ``TimelineWindow`` for windowed audio, else None.
        prediction: the ``speechmodel.inference.Prediction`` behind it (what
            ``infer.py`` formats); ``to_dict()`` is its JSON object.
    """

    source: str
    label: str
    confidence: float
    probabilities: dict
    duration: float
    timeline: list
    prediction: inference.Prediction = dataclasses.field(repr=False)

    @classmethod
    def from_prediction(cls, prediction):
        names = list(prediction.class_names)
        timeline = None
        if prediction.timeline is not None:
            timeline = [
                TimelineWindow(
                    w.start, w.end, w.label, w.confidence,
                    _probabilities(w.probabilities, names), float(w.voiced),
                )
                for w in prediction.timeline
            ]
        return cls(
            source=prediction.file,
            label=prediction.label,
            confidence=prediction.confidence,
            probabilities=_probabilities(prediction.probabilities, names),
            duration=float(prediction.duration),
            timeline=timeline,
            prediction=prediction,
        )

    def top_k(self, k):
        """The k most probable emotions as ``[(name, probability), ...]``."""
        return self.prediction.top_k(k)

    def to_dict(self, *, top_k=1):
        """The object ``infer.py --format json`` writes for this input."""
        return self.prediction.to_dict(top_k=top_k)


def _is_single(inputs):
    """One input (a path, an array, bytes, a file object) or a list."""
    return not isinstance(inputs, (list, tuple))


def _as_channels_last(samples):
    samples = np.asarray(samples)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ParameterError(
            "An audio array is 1-D (mono) or 2-D (samples, channels) or "
            f"(channels, samples). Received: shape={samples.shape}"
        )
    # The shorter axis is the channels: (2, 48000) is stereo, as (48000, 2).
    return samples.T if samples.shape[0] < samples.shape[1] else samples


def _write_array(samples, sample_rate, directory):
    """An array as a WAV file in ``directory`` (float32, or 16/32-bit PCM
    for integer arrays, at ``sample_rate``): read back by the same loader
    as every file, mixed down and resampled there."""
    import soundfile as sf

    if sample_rate is None:
        raise ParameterError(
            "A NumPy array needs its sample rate: classify(samples, "
            "sample_rate=44100). Received: sample_rate=None"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"`sample_rate` must be a positive integer (Hz). Received: sample_rate={sample_rate!r}")
    samples = _as_channels_last(samples)
    if samples.dtype == np.int16:
        subtype = "PCM_16"
    elif samples.dtype == np.int32:
        subtype = "PCM_32"
    elif np.issubdtype(samples.dtype, np.floating):
        samples, subtype = samples.astype(np.float32, copy=False), "FLOAT"
    else:
        raise ParameterError(
            "An audio array holds floats in [-1, 1] or int16 / int32 samples. "
            f"Received: dtype={samples.dtype}"
        )
    fd, path = tempfile.mkstemp(prefix="array-", suffix=".wav", dir=directory)
    os.close(fd)
    sf.write(path, samples, int(sample_rate), subtype=subtype, format="WAV")
    return path


class Recognizer:
    """A loaded emotion model with a Python API (``classify``, ``embed``).

    Made by ``speechmodel.load_model``. ``class_names``, ``sample_rate``
    and ``path`` are the model's; the Keras ``EmotionRecognizer`` of a
    model run by Keras is ``keras_model`` (call it, ``keras_model.classifier``).

    Args:
        model: a ``speechmodel.inference.InferenceModel``
            (``inference.load_model``).
        batch_size: files (or windows) per batch.
        window, hop: seconds of the windows of long audio (as ``infer.py``).
        max_utterance: audio longer than this (seconds) is analysed in
            windows (as ``infer.py``).
    """

    def __init__(self, model, *, batch_size=32, window=4.0, hop=2.0, max_utterance=20.0):
        if not isinstance(model, inference.InferenceModel):
            raise ParameterError(
                "`model` must be a loaded speechmodel.inference model (use "
                f"speechmodel.load_model(path)). Received: model={type(model).__name__}"
            )
        self.model = model
        self.batch_size = batch_size
        self.window = float(window)
        self.hop = float(hop)
        self.max_utterance = float(max_utterance)

    # --- The model ---------------------------------------------------------

    @property
    def keras_model(self):
        """The Keras ``EmotionRecognizer`` (None for a classical model or
        one on ONNX Runtime: ``load_model(..., runtime="keras")``)."""
        return getattr(self.model, "recognizer", None)

    @property
    def class_names(self):
        return list(self.model.class_names)

    @property
    def sample_rate(self):
        return self.model.sample_rate

    @property
    def path(self):
        return self.model.path

    def __repr__(self):
        return f"Recognizer(path={self.path!r}, kind={self.model.kind!r}, classes={self.class_names})"

    # --- Classification ----------------------------------------------------

    def _paths(self, items, sample_rate, stack, directory):
        """(path, name) of every input: paths as they are, the others as
        temporary files."""
        out = []
        for item in items:
            if isinstance(item, np.ndarray):
                out.append((_write_array(item, sample_rate, directory), "<array>"))
            elif isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)) or audio_lib.is_file_like(item):
                out.append(stack.enter_context(audio_lib.as_file(item)))
            else:
                raise ParameterError(
                    "An input is a path, a NumPy array (with sample_rate), the bytes of an "
                    f"audio file or a binary file object. Received: inputs=<{type(item).__name__}>"
                )
        return out

    def predictor(self, *, window=None, hop=None, max_utterance=None, attention=False,
                  same_speaker=False, min_confidence=None):
        """The ``speechmodel.inference.Predictor`` ``classify`` uses.

        ``window`` given and ``max_utterance`` not: audio longer than one
        window is analysed in windows (a timeline), whatever its length.
        """
        if max_utterance is None:
            max_utterance = self.max_utterance if window is None else window
        window = self.window if window is None else window
        if hop is None:
            hop = min(self.hop, window)
        return inference.Predictor(
            self.model, batch_size=self.batch_size, window=window, hop=hop,
            max_utterance=max_utterance, attention=attention, same_speaker=same_speaker,
            min_confidence=min_confidence,
        )

    def classify(self, inputs, *, sample_rate=None, window=None, hop=None, max_utterance=None,
                 same_speaker=False, min_confidence=None):
        """The emotion of one input or of a list of inputs.

        Args:
            inputs: one input or a list (tuple) of them. An input is a path
                (``str``/``os.PathLike``: always ONE file), a NumPy array
                of samples (1-D, or 2-D with channels; float in [-1, 1] or
                int16/int32; any rate: give ``sample_rate``), the bytes of
                an audio file, or a binary file object.
            sample_rate: the rate of array inputs, in Hz.
            window, hop: seconds; audio longer than ``max_utterance`` is
                analysed in windows of ``window`` seconds every ``hop``
                seconds and gets a ``timeline`` (as ``infer.py --window
                --hop``). Giving ``window`` alone makes ``max_utterance``
                the window: anything longer than one window is windowed.
            max_utterance: seconds (default 20, as ``infer.py``).
            same_speaker: the inputs are one speaker's recordings: a model
                trained with speaker normalisation standardises them with
                their own statistics (as ``infer.py --same_speaker``). The
                model is not changed: calls from other threads, same
                speaker or not, run meanwhile with their own statistics.
            min_confidence: a probability: a result whose confidence is
                below it gets the label ``"uncertain"`` (its probabilities
                are kept; ``prediction.emotion`` is the most probable
                one). The model card gives a threshold measured on
                validation speakers. Whatever it is, audio without speech gets ``"no speech"``.

        Returns:
            A ``Classification`` for one input; for a list, one result per
            input in order: a ``Classification``, or a
            ``speechmodel.Failure`` (``.file``, ``.reason``) for an input
            that could not be analysed.

        Raises:
            speechmodel.AudioError: one input (not a list) that cannot be
                analysed; the message names it.
            speechmodel.ParameterError (a ``ValueError``): bad options,
                an array without ``sample_rate``, an input of another type.
        """
        single = _is_single(inputs)
        items = [inputs] if single else list(inputs)
        predictor = self.predictor(
            window=window, hop=hop, max_utterance=max_utterance, same_speaker=same_speaker,
            min_confidence=min_confidence,
        )
        if not items:
            return []
        with contextlib.ExitStack() as stack:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="speechmodel-"))
            sources = self._paths(items, sample_rate, stack, directory)
            report = predictor.predict([path for path, _ in sources])
            results = []
            for (path, name), result in zip(sources, report.results):
                if isinstance(result, inference.Failure):
                    if single:
                        raise self._error(path, name, result.reason)
                    results.append(inference.Failure(name, result.reason))
                else:
                    prediction = dataclasses.replace(result, file=name)
                    results.append(Classification.from_prediction(prediction))
        return results[0] if single else results

    @staticmethod
    def _error(path, name, reason):
        """The AudioError of an input that failed: the loader's own (its
        ``kind``) when it fails too, else one with the predictor's reason."""
        try:
            audio_lib.load_audio(path, sample_rate=None)
        except audio_lib.AudioError as exc:
            return audio_lib.AudioError(name, exc.reason, kind=exc.kind)
        except Exception:
            pass
        return audio_lib.AudioError(name, reason, kind="corrupt")

    # --- Embeddings --------------------------------------------------------

    def _waveform(self, item, sample_rate):
        rate = self.sample_rate
        if isinstance(item, np.ndarray):
            with tempfile.TemporaryDirectory(prefix="speechmodel-") as directory:
                return audio_lib.load_audio(_write_array(item, sample_rate, directory), sample_rate=rate), "<array>"
        name = audio_lib.source_name(item)
        try:
            return audio_lib.load_audio(item, sample_rate=rate), name
        except audio_lib.AudioError as exc:
            raise audio_lib.AudioError(name, exc.reason, kind=exc.kind) from None

    def _segment_embeddings(self, waveform):
        """(N, D) or, on a pretrained front end, (N, L, D) segment
        embeddings of one waveform (the backend's ``embed_waveforms``)."""
        embeddings, counts = self.model.embed_waveforms(
            np.asarray(waveform, np.float32)[np.newaxis], np.array([len(waveform)], np.int32)
        )
        return np.asarray(embeddings)[0, : int(np.asarray(counts)[0])].astype(np.float32)

    def embed(self, inputs, *, sample_rate=None, segments=False):
        """Embeddings of one input or of a list of inputs, as NumPy.

        The segment embeddings are what the model's sequence head reads:
        one per segment of the utterance (the log-mel segments of
        ``speechmodel.features``; for a pretrained front end, the mean of
        its frames in each segment, per encoder block). The utterance
        embedding is the MEAN of the segment embeddings over the
        utterance's segments (not the attention-pooled BLSTM state):
        ``(D,)``, or ``(L, D)`` per encoder block for a pretrained front
        end.

        Args:
            inputs: as ``classify`` (a path, array, bytes, file object, or
                a list of them). The whole input is embedded at once.
            sample_rate: the rate of array inputs.
            segments: also return the ``(N, D)`` (or ``(N, L, D)``)
                segment embeddings.

        Returns:
            The utterance embedding, or ``(utterance, segments)`` with
            ``segments=True``; for a list, one per input in order
            (``speechmodel.Failure`` for an input that cannot be read).

        Raises:
            speechmodel.AudioError: one input that cannot be read.
            speechmodel.ParameterError: a classical model, or a classifier
                without segment embeddings.
        """
        if not hasattr(self.model, "embed_waveforms"):
            raise ParameterError(
                f"a {self.model.kind} model has no embeddings; use a Keras model. Received: model={self.path!r}"
            )
        single = _is_single(inputs)
        results = []
        for item in [inputs] if single else list(inputs):
            try:
                waveform, _ = self._waveform(item, sample_rate)
            except audio_lib.AudioError as exc:
                if single:
                    raise
                results.append(inference.Failure(exc.path, exc.reason))
                continue
            seg = self._segment_embeddings(waveform)
            utterance = seg.mean(axis=0)
            results.append((utterance, seg) if segments else utterance)
        return results[0] if single else results


def load_model(model=None, *, runtime=None, precision="float32", batch_size=32, window=4.0, hop=2.0,
               max_utterance=20.0):
    """A ready-to-use emotion model: a ``Recognizer`` (``classify``, ``embed``).

    Args:
        model: None (the shipped ``"default"``, the Whisper-based model), a
            shipped model's name (``"fast"``; ``speechmodel.presets``), a
            ``.keras`` file written by ``train.py``, its run directory, or a
            classical ``.skz`` model.
        runtime: ``"auto"`` (ONNX Runtime when it can, the default, or
            ``$SPEECHMODEL_RUNTIME``), ``"onnx"`` or ``"keras"``.
        precision: ``"float32"``, or ``"int8"`` on ONNX.
        batch_size, window, hop, max_utterance: see ``Recognizer``.

    Returns:
        A ``Recognizer``; ``rec.keras_model`` is the Keras
        ``EmotionRecognizer`` of a model run by Keras (``runtime="keras"``).

    Raises:
        speechmodel.ModelError (a ``ValueError``): the file is missing, not
            a model of this toolkit, fails to load, or its ``config.json``
            is too large; an unknown name (the closest shipped name is
            suggested). The message names the file.
        speechmodel.ParameterError: a bad ``runtime`` or ``precision``.
    """
    loaded = inference.load_model(model, runtime=runtime, precision=precision)
    return Recognizer(loaded, batch_size=batch_size, window=window, hop=hop, max_utterance=max_utterance)
