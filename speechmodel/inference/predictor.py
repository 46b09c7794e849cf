"""Runs a model over files: ``Predictor.predict`` turns every file into a
``Prediction`` or a ``Failure`` (one line naming the file and the reason;
the other files go on).

* Utterances (files up to ``max_utterance`` seconds, 20 s by default) are
  analysed whole, as the model was trained: they go through
  ``speechmodel.pipeline.make_dataset`` (parallel decoding, the batched
  log-mel segments) in batches of ``batch_size`` files, sorted by duration
  so that a batch pads little, and one compiled classifier call per batch.
* Longer recordings are streamed block by block
  (``speechmodel.audio.iter_blocks``; memory stays bounded whatever the
  length) and analysed in windows of ``window`` seconds every ``hop``
  seconds (``speechmodel.signal.stream_windows``), giving an emotion
  timeline. The last window ends at the end of the file (it is shorter, at
  least ``window - hop`` seconds). The overall result is the mean of the
  window probabilities weighted by each window's voiced seconds
  (``speechmodel.signal.VoicingDetector``: 32 ms frames every 40 ms whose
  normalised autocorrelation peaks at a pitch period of 60-400 Hz). Voicing
  does not depend on loudness, so quiet emotions count as much as loud
  ones, while silence, pauses and noise barely count (periodic sounds such
  as music or mains hum do count). A file without a voiced frame gets the
  plain mean (``weighting`` says which was used).
* A recording without speech (``speechmodel.signal.has_speech``: too few
  voiced seconds in runs of voiced frames, as digital silence and steady
  noise have) is labelled ``no speech`` instead of an emotion
  (``Prediction.no_speech``; its probabilities are kept).
* ``min_confidence``: a result (a file's, or a window's) whose top
  probability is below it is labelled ``uncertain`` (its probabilities are
  kept).
* With ``segment="vad"``, every file is cut into utterances at speech
  boundaries (``speechmodel.inference.streaming``).

A plot (``plot_dir``) never replaces a file this run did not create (a
free name is taken, and recorded in ``plot_renamed``); a plot that cannot
be written keeps the emotion result (``Prediction.plot_error``).
"""

import os
import sys

import numpy as np

from speechmodel.errors import ParameterError
from speechmodel.inference.backends import InferenceModel
from speechmodel.inference.loading import load_model
from speechmodel.inference.results import Failure, Prediction, Report, Segment, Window
from speechmodel.inference.streaming import StreamAnalyzer, analyze_blocks, waveform_classifier
from speechmodel.inference.writing import write_bytes
from speechmodel.signal import PooledSpectrogram, VoicingDetector, has_speech, stream_windows
from speechmodel.signal import waveform_has_speech

# How much same-speaker statistics lean on the model's average speaker, in
# segments: chosen on the validation speakers of the RAVDESS folds
# (``python benchmarks/speaker_norm.py runs/pretrained/ravdess_speakernorm``).
SPEAKER_PRIOR_SEGMENTS = 30


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
            when no speech is found); see ``speechmodel.inference.streaming``.
        vad: the detector for ``segment="vad"``: ``auto`` (Silero when
            installed, else voicing), ``silero`` or ``voicing``.
        same_speaker: the files of a ``predict`` call are one speaker's
            recordings: a model trained with speaker normalisation
            (``model.speaker_normalization``) standardises their segment
            embeddings with the statistics of all of them (unlabelled)
            instead of an average training speaker's. The more recordings,
            the better the statistics (see the model card).
        speaker_prior: with ``same_speaker``, how much the statistics lean
            on the model's average speaker, in segments (0.32 s each; 0:
            the recordings' own statistics). The default,
            ``SPEAKER_PRIOR_SEGMENTS``, was chosen on the validation
            speakers of the RAVDESS folds (``benchmarks/speaker_norm.py``):
            a few recordings then help instead of hurting.
        min_confidence: None, or a probability in [0, 1]: results whose
            confidence is below it are labelled ``uncertain`` (the model
            card gives a threshold measured on validation speakers).

    Raises:
        speechmodel.ParameterError (a ``ValueError``): an option is out of
            range, or attention is asked of a model that has none.
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
        same_speaker=False,
        speaker_prior=SPEAKER_PRIOR_SEGMENTS,
        min_confidence=None,
    ):
        if min_confidence is not None and not (
            isinstance(min_confidence, (int, float)) and 0 <= min_confidence <= 1
        ):
            raise ParameterError(
                "`min_confidence` must be a probability between 0 and 1. "
                f"Received: min_confidence={min_confidence!r}"
            )
        self.min_confidence = None if min_confidence is None else float(min_confidence)
        if same_speaker and getattr(model, "speaker_normalization", None) is None:
            raise ParameterError(
                "same-speaker normalisation needs a model trained with speaker normalisation "
                "(train.py --set model.speaker_normalization=true); this model "
                f"({getattr(model, 'path', None) or type(model).__name__}) was not. "
                "Received: same_speaker=True"
            )
        self.same_speaker = bool(same_speaker)
        if not (isinstance(speaker_prior, (int, float)) and 0 <= speaker_prior < float("inf")):
            raise ParameterError(
                "`speaker_prior` must be a number of segments, 0 or more. "
                f"Received: speaker_prior={speaker_prior!r}"
            )
        self.speaker_prior = float(speaker_prior)
        self.speaker_files = None  # Files the last predict's statistics came from.
        if segment not in ("windows", "vad"):
            raise ParameterError(f"`segment` must be windows or vad. Received: segment={segment!r}")
        if segment == "vad":
            from speechmodel import vad as vad_module

            if attention:
                raise ParameterError(
                    "attention weights are reported for clips and windows, not for "
                    "utterances cut by the VAD. Received: attention=True, segment=vad"
                )
            try:
                vad = vad_module.resolve_detector(vad)
            except vad_module.VADUnavailable as exc:
                raise ParameterError(str(exc)) from None
        self.segment = segment
        self.vad = vad
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        if not window > 0:
            raise ParameterError(f"`window` must be positive (seconds). Received: window={window!r}")
        if not 0 < hop <= window:
            raise ParameterError(
                "`hop` must be positive and at most `window` so that the "
                f"windows cover the recording. Received: hop={hop!r}, window={window!r}"
            )
        if not max_utterance > 0:
            raise ParameterError(
                f"`max_utterance` must be positive (seconds). Received: max_utterance={max_utterance!r}"
            )
        if not block_seconds > 0:
            raise ParameterError(f"`block_seconds` must be positive. Received: block_seconds={block_seconds!r}")
        if attention and not model.has_attention:
            name = type(getattr(model, "classifier", getattr(model, "model", model))).__name__
            raise ParameterError(
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
            settings = dict(StreamAnalyzer(
                None, sample_rate=self.model.sample_rate, class_names=self.model.class_names,
                segment="vad", vad=self.vad, max_utterance=self.max_utterance,
            ).settings)
        else:
            settings = {
                "window": self.window,
                "hop": self.hop,
                "max_utterance": self.max_utterance,
                "sample_rate": self.model.sample_rate,
                "overall": "mean of window probabilities weighted by voiced seconds",
            }
        if self.min_confidence is not None:
            settings["min_confidence"] = self.min_confidence
        if self.same_speaker:
            settings["speaker_normalization"] = (
                f"the statistics of the {self.speaker_files} readable inputs, as one speaker, "
                f"leaning on the average speaker's by {self.speaker_prior:g} segments"
                if self.speaker_files
                else "none: no readable input to take a speaker's statistics from"
            )
        return settings

    def predict(self, paths, *, on_failure=None, on_result=None, progress=None):
        """Analyses files.

        Args:
            paths: audio files (``collect_inputs`` resolves directories,
                patterns and lists).
            on_failure: called with each Failure as it is met.
            on_result: called with each Prediction as it is made.
            progress: called as ``progress(done, total)`` each time a file
                is finished (analysed or failed); ``total`` counts each
                distinct file once.

        Returns:
            Report: a Prediction or Failure per path, in order.
        """
        from speechmodel.audio import AudioError, integrity_warning, read_info

        given = [os.fspath(p) for p in paths]
        paths = list(dict.fromkeys(given))  # Each file analysed once.
        results = [None] * len(paths)
        self._plot_names = set()  # Plot names are unique within a call.
        self.plot_renamed = []  # (file, name taken, name used)

        finished = [0]

        def tick():
            finished[0] += 1
            if progress is not None:
                progress(finished[0], len(paths))

        def fail(i, reason):
            results[i] = Failure(paths[i], reason)
            if on_failure is not None:
                on_failure(results[i])
            tick()

        def done(i, prediction):
            prediction.with_min_confidence(self.min_confidence)
            prediction.warning = prediction.warning or warnings.get(i)
            if self.plot_dir is not None and prediction.plot is None and prediction.plot_error is None:
                prediction.plot = self._plot(prediction, None)  # Never raises.
            results[i] = prediction
            if on_result is not None:
                on_result(prediction)
            tick()

        clips, long_files, durations = [], [], {}
        # libsndfile's decoders print their own diagnostics on stderr when
        # probing a non-audio file (libmpg123: "Cannot read next header");
        # they are silenced here: every problem is reported as a Failure.
        unreadable, warnings = [], {}
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
                warning = integrity_warning(path, info)  # Damage the analysis would not see.
                if warning:
                    warnings[i] = warning
                long = self.segment == "vad" or info.duration > self.max_utterance
                (long_files if long else clips).append(i)
        for i, reason in unreadable:  # Reported once stderr is back.
            fail(i, reason)
        self.speaker_files = None
        if self.same_speaker and durations:
            self._predict_same_speaker(paths, clips, long_files, durations, fail, done)
        else:
            self._predict_readable(paths, clips, long_files, durations, fail, done)
        for i, result in enumerate(results):
            if result is None:  # Never silent, even if a backend misses one.
                fail(i, "no result was produced for this file (internal error)")
        by_path = dict(zip(paths, results))
        return Report([by_path[p] for p in given], list(self.model.class_names), self.settings)

    def _predict_same_speaker(self, paths, clips, long_files, durations, fail, done):
        """One speaker's files: their segment embeddings are standardised
        with the statistics of all of them, then classified (the model
        itself is not changed: other calls may run meanwhile). A clip is
        embedded once: it is classified from the embeddings its
        statistics came from (they are kept in memory for the call, about
        12 KB per 0.32 s segment with Whisper base). A long file is embedded
        whole for the statistics and then analysed window by window, as
        without ``same_speaker``."""
        from speechmodel.speaker_statistics import speaker_statistics

        clips = sorted(clips, key=lambda i: durations[i])
        embedded = dict(
            self.model.embed_files(
                [paths[i] for i in clips], batch_size=self.batch_size,
                on_failure=lambda j, reason: fail(clips[j], reason),
            )
        )
        sequences = [embedded[j] for j in sorted(embedded)]
        # The long files' failures are reported by their analysis below.
        sequences += [
            array for _, array in self.model.embed_files(
                [paths[i] for i in long_files], batch_size=1, on_failure=lambda j, reason: None
            )
        ]
        statistics = None
        if any(len(s) for s in sequences):
            statistics = speaker_statistics(
                sequences, prior=self.model.speaker_normalization.statistics(),
                prior_segments=self.speaker_prior,
            )
            self.speaker_files = len(sequences)
        order = sorted(embedded)
        outputs = self.model.predict_embeddings(
            [embedded[j] for j in order], batch_size=self.batch_size, attention=self.attention,
            statistics=statistics,
        )
        for k, probs, weights, n_segments in outputs:
            self._clip_done(paths, clips[order[k]], durations, probs, weights, n_segments, done)
        self._predict_readable(paths, [], long_files, durations, fail, done, statistics=statistics)

    def _predict_readable(self, paths, clips, long_files, durations, fail, done, *, statistics=None):
        from speechmodel.audio import AudioError

        clips.sort(key=lambda i: durations[i])
        clip_paths = [paths[i] for i in clips]
        outputs = self.model.predict_files(
            clip_paths,
            batch_size=self.batch_size,
            attention=self.attention,
            on_failure=lambda j, reason: fail(clips[j], reason),
        )
        for j, probs, weights, n_segments in outputs:
            self._clip_done(paths, clips[j], durations, probs, weights, n_segments, done)

        for i in long_files:
            try:
                prediction = self._predict_long(paths[i], durations[i], statistics=statistics)
            except AudioError as exc:
                fail(i, exc.reason)
                continue
            except Exception as exc:  # Named with the file; the others go on.
                fail(i, f"analysis failed ({type(exc).__name__}: {exc})")
                continue
            done(i, prediction)

    def _clip_done(self, paths, i, durations, probs, weights, n_segments, done):
        duration = durations[i]
        attention = None
        if weights is not None:
            spans = self.model.segment_times(n_segments, duration)
            attention = [Segment(s, e, w) for (s, e), w in zip(spans, weights)]
        done(
            i,
            Prediction(
                paths[i], np.asarray(probs, np.float32), list(self.model.class_names),
                duration, attention=attention, no_speech=not self._has_speech(paths[i]),
            ),
        )

    def _has_speech(self, path):
        """Whether the clip at ``path`` holds speech (its voicing, read
        again: the model's pipeline decodes inside TensorFlow). A clip that
        cannot be read again keeps its emotion."""
        from speechmodel.audio import load_audio

        rate = self.model.sample_rate
        try:
            waveform = load_audio(path, sample_rate=rate)
        except Exception:  # noqa: BLE001 (analysed already: the result stands)
            return True
        return waveform_has_speech(waveform, sample_rate=rate)

    def _predict_long(self, path, expected_duration, *, statistics=None):
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
            spectrogram = PooledSpectrogram(config, expected_duration * 100)
        if self.segment == "vad":  # Utterances at speech boundaries.
            analyzer = StreamAnalyzer(
                waveform_classifier(self.model, batch_size=self.batch_size, statistics=statistics),
                sample_rate=rate, class_names=self.model.class_names, segment="vad",
                vad=self.vad, max_utterance=self.max_utterance,
            )
            blocks = iter_blocks(path, sample_rate=rate, block_seconds=self.block_seconds)
            if spectrogram is not None:
                blocks = (spectrogram.add(b) or b for b in blocks)
            prediction = analyze_blocks(blocks, analyzer, path)
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
                batch, lengths, attention=self.attention,
                **({} if statistics is None else {"statistics": statistics}),
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
            path, overall.astype(np.float32), names, duration, timeline=timeline, weighting=weighting,
            no_speech=not has_speech(voiced, frame_hop / rate),
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
            # The renderer is looked up on the package, where callers (and
            # tests: a full disk) may replace it.
            from speechmodel import inference

            return self._save_plot(prediction.file, inference.render_plot(prediction, spectrogram))
        except Exception as exc:  # A full disk, say: the emotion result stands.
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            prediction.plot_error = f"the plot could not be written ({type(exc).__name__}: {reason})"
            return None


def predict(paths, model, **options):
    """``Predictor(model, **options).predict(paths)``; ``model`` may be a path."""
    if not isinstance(model, InferenceModel):
        model = load_model(model)
    return Predictor(model, **options).predict(paths)
