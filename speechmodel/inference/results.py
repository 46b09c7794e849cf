"""What inference gives: a ``Prediction`` (the emotion of one file, with
the ``Window`` timeline of a long recording and the attention ``Segment``
of each model segment) or a ``Failure`` (a file that could not be analysed,
and why), gathered in a ``Report``. Each turns itself into the dicts of
the JSON output (``to_dict``).
"""

import dataclasses

import numpy as np

# The label of a result whose confidence is below the asked-for minimum
# (``Predictor(min_confidence=...)``): its probabilities are kept.
UNCERTAIN = "uncertain"
# The label of a recording that holds no speech (``speechmodel.signal.
# has_speech``, or no utterance found by the VAD): no emotion is given.
NO_SPEECH = "no speech"


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


class _Probabilities:
    """``label`` and ``confidence`` of a result with ``probabilities`` over
    ``class_names``: the most probable emotion (``emotion``), or
    ``UNCERTAIN`` when its probability is below ``min_confidence``, or
    ``NO_SPEECH`` for a recording without speech (``no_speech``)."""

    min_confidence = None
    no_speech = False

    @property
    def emotion(self):
        """The most probable class, whatever the confidence."""
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def uncertain(self):
        return self.min_confidence is not None and self.confidence < self.min_confidence

    @property
    def label(self):
        if self.no_speech:
            return NO_SPEECH
        return UNCERTAIN if self.uncertain else self.emotion

    @property
    def confidence(self):
        return float(np.max(self.probabilities))


@dataclasses.dataclass
class Window(_Probabilities):
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
    min_confidence: float = None

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
class Prediction(_Probabilities):
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
        min_confidence: results (the file's and its windows') whose
            confidence is below it are labelled ``UNCERTAIN``; None: never.
        no_speech: the recording holds no speech: labelled ``NO_SPEECH``
            (the probabilities are what the model said of it anyway).
        warning: what makes the result worth less, naming the damage
            (``speechmodel.audio.integrity_warning``: a file cut short,
            samples beyond full scale), or None.
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
    min_confidence: float = None
    no_speech: bool = False
    warning: str = None

    def with_min_confidence(self, min_confidence):
        """Sets ``min_confidence`` on the result and its windows; returns it."""
        self.min_confidence = min_confidence
        for window in self.timeline or []:
            window.min_confidence = min_confidence
        return self

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
        if self.warning is not None:
            out["warning"] = self.warning
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


def result_dict(result, *, top_k=1):
    """The JSON object of one result, as ``infer.py --format json`` lists
    it: a Prediction's ``to_dict(top_k=...)``, a Failure's ``file`` and
    ``error``. The one function every JSON output uses (``format_json``,
    ``format_jsonl``, the batch shards of ``speechmodel.batch``)."""
    if isinstance(result, Prediction):
        return result.to_dict(top_k=top_k)
    return result.to_dict()


def _probabilities_dict(probabilities, class_names):
    return {c: round(float(p), 6) for c, p in zip(class_names, probabilities)}
