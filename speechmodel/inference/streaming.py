"""Recordings analysed as their audio arrives, in bounded memory.

``StreamAnalyzer`` cuts blocks of mono float32 audio at the model's rate
into the same windows as ``Predictor`` uses for a long file (or into
utterances with a voice activity detector, ``segment="vad"``) and
classifies each as soon as it is complete. Memory is bounded whatever the
length: one window (or one utterance, at most ``max_utterance`` seconds)
plus one block, and running sums for the overall result.
``analyze_blocks`` runs it over a file's blocks; ``waveform_classifier``
batches a model's ``predict_waveforms`` for it. The blocks come from
``speechmodel.audio.iter_blocks`` (files) or ``speechmodel.audio_sources``
(standard input, the microphone); ``speechmodel.cli.stream_command``
prints the results of a live stream line by line.
"""

import numpy as np

from speechmodel.inference.results import NO_SPEECH, Prediction, Window
from speechmodel.signal import MIN_VOICED_SECONDS, VoicedRuns, VoicingDetector

SEGMENTATIONS = ("windows", "vad")


class Utterance(Window):
    """An utterance found by the voice activity detector: a Window whose
    ``voiced`` is the fraction of its frames the detector called speech."""

    def to_dict(self):
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "probabilities": {c: round(float(p), 6) for c, p in zip(self.class_names, self.probabilities)},
            "speech": round(float(self.voiced), 4),
        }


class SegmentedPrediction(Prediction):
    """A recording cut into utterances by the voice activity detector. Its
    probabilities are the duration-weighted mean over the utterances; with
    no speech at all it has no emotion (``probabilities`` is None)."""

    @property
    def no_speech(self):
        return self.probabilities is None

    @no_speech.setter
    def no_speech(self, value):
        pass  # Decided by the VAD: no utterance, no probabilities.

    @property
    def uncertain(self):
        return self.probabilities is not None and super().uncertain

    @property
    def confidence(self):
        return None if self.probabilities is None else super().confidence

    def top_k(self, k):
        return [] if self.probabilities is None else super().top_k(k)

    def to_dict(self, *, top_k=1):
        if self.probabilities is not None:
            out = super().to_dict(top_k=top_k)
        else:
            out = {
                "file": self.file, "label": NO_SPEECH, "confidence": None, "probabilities": None,
                "top_k": [], "duration": round(self.duration, 3), "windowed": True,
                "weighting": self.weighting, "timeline": [],
            }
            if self.plot is not None:
                out["plot"] = self.plot
        out["segmentation"] = "vad"
        return out


def waveform_classifier(model, *, batch_size=32, statistics=None):
    """``classify(list of 1-D float32 arrays) -> (n, C) probabilities``
    through ``model.predict_waveforms`` in zero-padded batches
    (``statistics``: one speaker's, for a speaker-normalised model)."""
    options = {} if statistics is None else {"statistics": statistics}

    def classify(waveforms):
        out = []
        for i in range(0, len(waveforms), batch_size):
            part = waveforms[i : i + batch_size]
            lengths = np.array([len(w) for w in part], np.int32)
            batch = np.zeros((len(part), int(lengths.max())), np.float32)
            for b, w in enumerate(part):
                batch[b, : len(w)] = w
            probs, _ = model.predict_waveforms(batch, lengths, attention=False, **options)
            out.append(np.asarray(probs, np.float32))
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    return classify


class StreamAnalyzer:
    """Windows or utterances of a stream, classified as they complete.

    Args:
        classify: ``list of waveforms -> (n, C) probabilities`` (see
            ``waveform_classifier``).
        sample_rate: the rate of the blocks (the model's).
        class_names: the C classes.
        segment: ``"windows"`` (``window`` seconds every ``hop``, the last
            one ending at the end; each weighted by its voiced seconds, as
            ``Predictor`` does for a long file) or ``"vad"`` (utterances at
            speech boundaries, at most ``max_utterance`` seconds; silence
            and noise between them get no emotion).
        vad: the detector for ``"vad"`` (``speechmodel.vad.DETECTORS``).
        vad_options: Segmenter options (seconds), over the detector's
            defaults.
        context: ``"vad"``: seconds of audio on each side of an utterance
            that the classifier also gets (never past the neighbouring
            utterances): the models are trained on clips with about a
            second of silence around the speech, and cut tight to the
            speech they do much worse (on held-in RAVDESS actors 21-22
            with the shipped model, 47 % accuracy without context, 80 %
            with 1 s). The reported start and end stay the speech's.
        min_confidence: None, or a probability: windows, utterances and
            the overall result below it are labelled ``uncertain``.

    In ``"windows"`` mode, a stream without speech
    (``speechmodel.signal.has_speech`` over all of it) gets ``no speech``
    as its overall result.

    ``add(block)`` returns the windows (or utterances) that the block
    completed, classified; ``finish()`` the rest; ``prediction(file)``
    the overall result.

    Durations are in seconds (``window``, ``hop``, ``max_utterance``, the
    settings, the results), positions in the stream in samples at
    ``sample_rate`` (``window_samples``, ``hop_samples``,
    ``context_samples``, ``total``).
    """

    def __init__(self, classify, *, sample_rate, class_names, segment="windows", window=4.0, hop=2.0,
                 vad="auto", max_utterance=20.0, vad_options=None, context=1.0, min_confidence=None):
        if segment not in SEGMENTATIONS:
            raise ValueError(f"`segment` must be one of {', '.join(SEGMENTATIONS)}. Received: segment={segment!r}")
        if not window > 0 or not 0 < hop <= window:
            raise ValueError(
                f"`hop` must be positive and at most `window`. Received: window={window!r}, hop={hop!r}"
            )
        self.classify = classify
        self.rate = int(sample_rate)
        self.class_names = list(class_names)
        self.segment = segment
        self.window, self.hop = float(window), float(hop)  # Seconds.
        self.max_utterance = float(max_utterance)
        self.min_confidence = min_confidence
        self.total = 0
        self.count = 0
        self._sum = None  # Weighted sum of probabilities (float64).
        self._weight = 0.0
        self._plain = None  # Unweighted sum (the fallback when nothing is voiced).
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0
        self.finished = False
        if segment == "windows":
            self.window_samples = max(1, int(round(window * self.rate)))
            self.hop_samples = max(1, int(round(hop * self.rate)))
            self._next_start = 0
            self._last_end = None
            self._voicing = VoicingDetector(self.rate)
            self._voiced_runs = VoicedRuns(self._voicing.hop / self.rate)
            self._voiced = np.zeros(0, bool)
            self._voiced_first = 0  # Frame index of _voiced[0].
            self._pending = []  # (start, samples) waiting for their voicing.
            self.detector = None
        else:
            from speechmodel import vad as V

            self.detector = V.make_detector(vad, self.rate)
            self.segmenter = V.segmenter_for(self.detector, max_speech=self.max_utterance, **(vad_options or {}))
            self.context_samples = max(0, int(round(context * self.rate)))
            self._waiting = []  # Utterances found, waiting for their right context.
            self._previous_end = 0  # End of the last utterance classified.

    @property
    def settings(self):
        out = {"segment": self.segment, "sample_rate": self.rate}
        if self.segment == "windows":
            out.update(window=self.window, hop=self.hop,
                       overall="mean of window probabilities weighted by voiced seconds")
        else:
            s = self.segmenter
            out.update(
                vad=self.detector.name, threshold=s.threshold,
                min_speech=s.min_speech / self.rate, min_silence=s.min_silence / self.rate,
                pad=s.pad / self.rate, max_utterance=self.max_utterance, context=self.context_samples / self.rate,
                overall="mean of utterance probabilities weighted by duration",
            )
        return out

    # -- windows --------------------------------------------------------

    def _cut_windows(self, final):
        """Moves complete windows from the buffer to _pending (the same
        windows as ``inference.stream_windows``)."""
        end_of_data = self._buffer_start + len(self._buffer)
        while self._next_start + self.window_samples <= end_of_data:
            offset = self._next_start - self._buffer_start
            self._pending.append((self._next_start, self._buffer[offset : offset + self.window_samples].copy()))
            self._last_end = self._next_start + self.window_samples
            self._next_start += self.hop_samples
            drop = min(self._next_start - self._buffer_start, len(self._buffer))
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        if final and (self._last_end is None or self._last_end < end_of_data) and end_of_data > self._next_start:
            offset = self._next_start - self._buffer_start
            self._pending.append((self._next_start, self._buffer[offset:].copy()))
            self._last_end = end_of_data
            self._buffer = np.zeros(0, np.float32)
            self._buffer_start = end_of_data

    def _window_results(self, final):
        parts, self._voicing.parts = self._voicing.parts, []
        if parts:
            self._voiced = np.concatenate([self._voiced, *parts])
            for part in parts:
                self._voiced_runs.add(part)
        frame_hop = self._voicing.hop
        ready = [
            (s, w) for s, w in self._pending if final or self._voicing.next >= s + len(w)
        ]
        self._pending = self._pending[len(ready):]
        if not ready:
            return []
        probs = self.classify([w for _, w in ready])
        out = []
        for (start, w), p in zip(ready, probs):
            end = start + len(w)
            lo, hi = -(-start // frame_hop), -(-end // frame_hop)
            frames = self._voiced[max(0, lo - self._voiced_first) : max(0, hi - self._voiced_first)]
            fraction = float(frames.mean()) if frames.size else 0.0
            self._accumulate(p, fraction * (end - start) / self.rate)
            out.append(Window(start / self.rate, end / self.rate, np.asarray(p, np.float32), fraction,
                              self.class_names, min_confidence=self.min_confidence))
        # Frames before the next window's start are no longer needed.
        keep_from = -(-(self._pending[0][0] if self._pending else self._next_start) // frame_hop)
        drop = max(0, min(len(self._voiced), keep_from - self._voiced_first))
        self._voiced = self._voiced[drop:]
        self._voiced_first += drop
        return out

    # -- utterances -----------------------------------------------------

    def _ready_utterances(self, final):
        """The waiting utterances whose right context is known: (region,
        first sample, end sample) to classify."""
        ready = []
        while self._waiting:
            region = self._waiting[0]
            following = None
            if len(self._waiting) > 1:
                following = self._waiting[1].start
            elif self.segmenter.triggered:
                following = max(region.end, self.segmenter.detector.frame_start(self.segmenter.start_frame)
                                - self.segmenter.pad)
            right = region.end + self.context_samples
            if following is not None:
                right = min(right, max(region.end, following))
            elif final:
                right = min(right, self.total)
            elif self.total < right:
                break
            left = max(self._previous_end, region.start - self.context_samples)
            ready.append((region, left, right))
            self._previous_end = region.end
            self._waiting.pop(0)
        return ready

    def _utterance_results(self, ready):
        if not ready:
            return []
        regions = [r for r, _, _ in ready]
        waves = [self._buffer[a - self._buffer_start : b - self._buffer_start].copy() for _, a, b in ready]
        probs = self.classify(waves)
        out = []
        for r, p in zip(regions, probs):
            self._accumulate(p, (r.end - r.start) / self.rate)
            out.append(Utterance(r.start / self.rate, r.end / self.rate, np.asarray(p, np.float32), r.speech,
                                 self.class_names, min_confidence=self.min_confidence))
        return out

    def _trim_utterance_buffer(self):
        keep = self.segmenter.pending_start()
        if self._waiting:
            keep = min(keep, self._waiting[0].start)
        keep -= self.context_samples  # The left context of what is still to come.
        drop = max(0, min(len(self._buffer), keep - self._buffer_start))
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop

    # -- common ---------------------------------------------------------

    def _accumulate(self, probs, weight):
        p = np.asarray(probs, np.float64)
        if self._sum is None:
            self._sum, self._plain = np.zeros_like(p), np.zeros_like(p)
        self._sum += weight * p
        self._plain += p
        self._weight += weight
        self.count += 1

    def add(self, block):
        """Takes the next block (float32 mono at ``sample_rate``); returns
        the windows or utterances it completed."""
        if self.finished:
            raise RuntimeError("add() after finish()")
        block = np.asarray(block, np.float32).reshape(-1)
        if not block.size:
            return []
        self.total += len(block)
        self._buffer = np.concatenate([self._buffer, block])
        if self.segment == "windows":
            self._voicing.add(block)
            self._cut_windows(final=False)
            return self._window_results(final=False)
        self._waiting += self.segmenter.add(self.detector.add(block))
        out = self._utterance_results(self._ready_utterances(final=False))
        self._trim_utterance_buffer()
        return out

    def finish(self):
        """Ends the stream: the last windows or utterances."""
        if self.finished:
            return []
        self.finished = True
        if self.segment == "windows":
            self._cut_windows(final=True)
            return self._window_results(final=True)
        probs = self.detector.add(np.zeros(0, np.float32), last=True)
        self._waiting += self.segmenter.add(probs) + self.segmenter.finish(self.total)
        return self._utterance_results(self._ready_utterances(final=True))

    @property
    def duration(self):
        return self.total / self.rate

    def overall(self):
        """``(probabilities or None, weighting)`` so far."""
        if self._sum is None:
            return None, ("speech" if self.segment == "vad" else "uniform")
        if self.segment == "vad":
            return (self._sum / self._weight).astype(np.float32), "speech"
        if self._weight > 0:
            return (self._sum / self._weight).astype(np.float32), "voiced"
        return (self._plain / self.count).astype(np.float32), "uniform"

    def prediction(self, file, timeline=None):
        """The overall result as a Prediction (``timeline``: the windows or
        utterances, if the caller kept them)."""
        probs, weighting = self.overall()
        if self.segment == "vad":
            return SegmentedPrediction(file, probs, self.class_names, self.duration,
                                       timeline=list(timeline or []), weighting=weighting,
                                       min_confidence=self.min_confidence)
        return Prediction(file, probs, self.class_names, self.duration, timeline=timeline, weighting=weighting,
                          min_confidence=self.min_confidence,
                          no_speech=self._voiced_runs.seconds < MIN_VOICED_SECONDS)


def analyze_blocks(blocks, analyzer, file):
    """Runs ``analyzer`` over all ``blocks``; returns the Prediction with
    its whole timeline (for files, whose timeline is small)."""
    timeline = []
    for block in blocks:
        timeline += analyzer.add(block)
    timeline += analyzer.finish()
    return analyzer.prediction(file, timeline)

