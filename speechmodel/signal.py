"""Signal processing on streams, in bounded memory: voicing, windows and
the pooled spectrogram of a recording of any length.

* ``VoicingDetector`` / ``voiced_frames``: which 40 ms frames hold voiced
  speech (periodicity at a 60-400 Hz pitch, whatever the level). Long
  recordings weight their windows by it; ``speechmodel.vad``'s voicing
  detector and ``speechmodel.inference.streaming`` use it too.
* ``has_speech`` / ``voiced_run_seconds``: whether a recording holds any
  speech at all (the ``no speech`` of inference): enough voiced seconds in
  runs of consecutive voiced frames.
* ``stream_windows`` / ``window_spans``: a stream of blocks cut into windows
  of ``window`` samples every ``hop`` samples, the last one ending at the
  end.
* ``PooledSpectrogram``: the log-mel spectrogram of a stream, pooled in time
  to at most ``PLOT_COLUMNS`` columns (what a plot of a long file shows).

This module sits beside ``speechmodel.audio`` and ``speechmodel.features``
(file -> audio -> signal/features -> model -> result): it imports nothing
from the model, training, inference or API layers.
"""

import math

import numpy as np

# Voicing (for weighting the windows of a long file), see VoicingDetector.
VOICING_THRESHOLD = 0.4
VOICING_FLOOR_DB = -80.0
# No speech: fewer than MIN_VOICED_SECONDS voiced in runs of at least
# MIN_VOICED_RUN consecutive voiced frames. Chosen on the 1440 RAVDESS clips
# against generated silence, dither and white, pink and brown noise of 3 s
# and 60 s (benchmarks/speech_gate.py, benchmarks/results/speech_gate.md):
# every noise had 0 voiced frames, the least voiced RAVDESS clip 0.20 s
# (5 frames), with runs of any length (longer runs only lower the speech
# side); the threshold is half of that. Steady periodic sounds (mains hum)
# are voiced and pass.
MIN_VOICED_RUN = 1
MIN_VOICED_SECONDS = 0.1
# At most this many spectrogram columns are kept for the plot of a long file.
PLOT_COLUMNS = 3000


def window_spans(total, window, hop):
    """The ``(start, end)`` sample spans of the windows ``stream_windows``
    cuts from ``total`` samples: every ``hop`` samples, the last one ending
    at ``total``."""
    spans = []
    start = 0
    while True:
        end = min(start + window, total)
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


class VoicedRuns:
    """Counts the voiced frames that lie in runs of at least ``min_run``
    consecutive voiced frames, over frames given in pieces (a stream).

    ``add(voiced)`` takes the next bool frames; ``seconds`` is the count so
    far times ``frame_seconds``.
    """

    def __init__(self, frame_seconds, *, min_run=MIN_VOICED_RUN):
        self.frame_seconds = float(frame_seconds)
        self.min_run = int(min_run)
        self.frames = 0  # Voiced frames in runs long enough.
        self._run = 0  # Length of the current run.

    def add(self, voiced):
        voiced = np.asarray(voiced, bool).reshape(-1)
        if not voiced.size:
            return self
        edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = ends - starts
        if len(lengths) and starts[0] == 0 and self._run:
            # The first run continues the one the last piece ended with.
            before = self._run if self._run >= self.min_run else 0
            joined = self._run + lengths[0]
            self.frames += (joined if joined >= self.min_run else 0) - before
            lengths, carried = lengths[1:], joined
        else:
            carried = None
        self.frames += int(lengths[lengths >= self.min_run].sum())
        if voiced[-1]:
            self._run = carried if carried is not None and not len(lengths) else int(ends[-1] - starts[-1])
        else:
            self._run = 0
        return self

    @property
    def seconds(self):
        return self.frames * self.frame_seconds


def voiced_run_seconds(voiced, frame_seconds, *, min_run=MIN_VOICED_RUN):
    """Seconds of the voiced frames (bool array, one per ``frame_seconds``)
    that lie in runs of at least ``min_run`` consecutive voiced frames."""
    return VoicedRuns(frame_seconds, min_run=min_run).add(voiced).seconds


def has_speech(voiced, frame_seconds, *, min_seconds=MIN_VOICED_SECONDS, min_run=MIN_VOICED_RUN):
    """Whether a recording whose voicing is ``voiced`` (bool per frame of
    ``VoicingDetector``, ``frame_seconds`` apart) holds speech: at least
    ``min_seconds`` voiced in runs of ``min_run`` frames. Periodic sounds
    (mains hum, music) are voiced too, and pass."""
    return voiced_run_seconds(voiced, frame_seconds, min_run=min_run) >= min_seconds


def waveform_has_speech(waveform, *, sample_rate):
    """``has_speech`` of a whole signal (its ``voiced_frames``)."""
    voiced, hop = voiced_frames(waveform, sample_rate=sample_rate)
    return has_speech(voiced, hop / sample_rate)


class PooledSpectrogram:
    """The log-mel spectrogram of a stream, block by block, averaged over
    runs of ``pool`` frames so that at most ``PLOT_COLUMNS`` columns are
    kept (for plots of recordings of any length).

    Args:
        config: the ``speechmodel.config.FeatureConfig`` of the log-mel.
        expected_frames: about how many frames the stream has (sets the
            pooling).

    ``add(block)`` takes consecutive float blocks; ``finish()`` returns the
    (columns, n_mels) dB spectrogram, clipped once to ``top_db`` below its
    maximum (``config.top_db``, 80 dB when None).
    """

    def __init__(self, config, expected_frames):
        # No per-block top_db clip (it would differ from block to block):
        # the whole spectrogram is clipped once, in finish().
        self.config = config.replace(top_db=None)
        self.top_db = config.top_db or 80.0
        self.pool = max(1, math.ceil(expected_frames / PLOT_COLUMNS))
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
