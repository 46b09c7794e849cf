"""The work behind the HTTP service, without HTTP: limits, uploads, analysis.

``EmotionService`` holds the one model it was started with (a request can
never name another), the ``BatchingQueue`` through which every request's
clips, windows or utterances go, and a private temporary directory where
uploads are written while they are analysed (each removed when its request
ends; the directory when the service closes).

``analyze(data, filename, options)`` gives the JSON of ``infer.py --format
json`` for one file: ``{"model", "class_names", "settings", "results":
[result]}``. ``analyze_speaker(uploads, options)`` gives it for several
files of one speaker, as ``infer.py --same_speaker`` (a model trained with
speaker normalisation standardises them with their own statistics); a file
that cannot be analysed is a result with an ``error``, the others go on. A clip up to ``max_utterance`` seconds is classified whole;
longer audio in windows (``window``, ``hop``) weighted by voicing, or, with
``segment="vad"``, in utterances at speech boundaries, exactly as
``infer.py`` does. Problems are ``ServiceError`` with an HTTP status.
"""

import dataclasses
import os
import shutil
import tempfile
import threading
import time
import uuid

import numpy as np

from speechmodel.serve.batching import BatchingQueue
from speechmodel.signal import waveform_has_speech
from speechmodel.errors import Error

OPTIONS = ("top_k", "window", "hop", "segment", "vad", "min_confidence")


class ServiceError(Error):
    """A request that cannot be served: an HTTP status and a message."""

    def __init__(self, status, message, *, kind=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}

    def to_dict(self):
        out = {"error": self.message, "status": self.status}
        if self.kind is not None:
            out["kind"] = self.kind
        return out


@dataclasses.dataclass
class Limits:
    """What one request may ask of the service.

    Attributes:
        max_upload_bytes: body size (413 past it).
        max_duration: seconds of audio (413 past it); for a same-speaker
            request, of all its files together.
        max_files: files in one same-speaker request (400 past it).
        request_timeout: seconds from arrival to answer (408 past it).
        max_pending: requests admitted at once, waiting or running (503
            with ``Retry-After`` past it).
        retry_after: the seconds suggested in ``Retry-After``.
    """

    max_upload_bytes: int = 25 * 1024 * 1024
    max_duration: float = 600.0
    max_files: int = 64
    request_timeout: float = 60.0
    max_pending: int = 64
    retry_after: int = 1


@dataclasses.dataclass
class Defaults:
    """The analysis settings used when a request does not say."""

    window: float = 4.0
    hop: float = 2.0
    max_utterance: float = 20.0
    segment: str = "windows"
    vad: str = "auto"


def _parse_options(raw, defaults, class_count):
    """Query or form fields -> checked options; ServiceError(400) names
    the first bad or unknown field."""
    unknown = sorted(set(raw) - set(OPTIONS))
    if unknown:
        raise ServiceError(
            400, f"unknown parameter(s) {', '.join(unknown)}: this service takes "
            f"{', '.join(OPTIONS)} (and the audio), and serves only the model it was started with",
            kind="bad_parameter",
        )

    def number(name, kind, default):
        if name not in raw or raw[name] in ("", None):
            return default
        try:
            value = kind(raw[name])
        except (TypeError, ValueError):
            raise ServiceError(400, f"{name} must be a number. Received: {name}={raw[name]!r}",
                               kind="bad_parameter") from None
        if not np.isfinite(value):
            raise ServiceError(400, f"{name} must be finite. Received: {name}={raw[name]!r}", kind="bad_parameter")
        return value

    top_k = number("top_k", int, 1)
    if not 1 <= top_k <= class_count:
        raise ServiceError(400, f"top_k must be between 1 and the model's {class_count} classes. "
                           f"Received: top_k={top_k}", kind="bad_parameter")
    window = number("window", float, defaults.window)
    hop = number("hop", float, defaults.hop if "window" not in raw else min(defaults.hop, window))
    if not (0.1 <= window <= 60.0) or not 0 < hop <= window:
        raise ServiceError(400, "window must be 0.1-60 s and hop positive and at most window. "
                           f"Received: window={window}, hop={hop}", kind="bad_parameter")
    segment = raw.get("segment") or defaults.segment
    if segment not in ("windows", "vad"):
        raise ServiceError(400, f"segment must be windows or vad. Received: segment={segment!r}",
                           kind="bad_parameter")
    vad = raw.get("vad") or defaults.vad
    if vad not in ("auto", "silero", "voicing"):
        raise ServiceError(400, f"vad must be auto, silero or voicing. Received: vad={vad!r}",
                           kind="bad_parameter")
    min_confidence = number("min_confidence", float, None)
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise ServiceError(400, "min_confidence must be a probability between 0 and 1. "
                           f"Received: min_confidence={min_confidence}", kind="bad_parameter")
    return {"top_k": top_k, "window": window, "hop": hop, "segment": segment, "vad": vad,
            "min_confidence": min_confidence}


class Ticket:
    """One admitted request; ``release()`` counts it out (once)."""

    def __init__(self, service):
        self._service = service
        self._lock = threading.Lock()
        self._released = False
        self.handed_off = False  # The analysis thread will release it.

    def release(self):
        with self._lock:
            if self._released:
                return
            self._released = True
        self._service._release()


class EmotionService:
    """See the module docstring.

    Args:
        model: a loaded InferenceModel (``speechmodel.inference.load_model``).
        limits: Limits.
        defaults: Defaults.
        max_batch, max_wait: the BatchingQueue's.
        tmpdir: the directory for uploads (removed by ``close``); default:
            a new one.
    """

    def __init__(self, model, *, limits=None, defaults=None, max_batch=32, max_wait=0.005, tmpdir=None):
        self.model = model
        self.limits = limits or Limits()
        self.defaults = defaults or Defaults()
        self.class_names = list(model.class_names)
        self.rate = int(model.sample_rate)
        self.batcher = BatchingQueue(
            lambda waves, lengths: model.predict_waveforms(waves, lengths, attention=False)[0],
            sample_rate=self.rate, max_batch=max_batch, max_wait=max_wait,
        )
        # Its own directory (``tmpdir``: one made by the caller, which the
        # service now owns and removes when it closes).
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="speechmodel-serve-")
        self._lock = threading.Lock()
        self.pending = 0
        self.served = 0
        self.rejected = 0
        from speechmodel import vad as V

        self.silero = V.silero_available()
        # ``POST /v1/classify_speaker`` needs a speaker-normalised model.
        self.same_speaker = getattr(model, "speaker_normalization", None) is not None

    # -- admission ------------------------------------------------------

    def admit(self):
        """Counts a request in (a Ticket, to ``release()`` once), or
        ServiceError(503) when ``max_pending`` are already in."""
        with self._lock:
            if self.pending >= self.limits.max_pending:
                self.rejected += 1
                raise ServiceError(
                    503, f"the service is busy ({self.pending} requests in progress); retry later",
                    kind="busy", headers={"Retry-After": str(self.limits.retry_after)},
                )
            self.pending += 1
        return Ticket(self)

    def _release(self):
        with self._lock:
            self.pending -= 1
            self.served += 1

    # -- description ----------------------------------------------------

    def describe(self):
        """``GET /v1/model``."""
        d, lim = self.defaults, self.limits
        return {
            "model": self.model.describe(),
            "class_names": self.class_names,
            "settings": {
                "sample_rate": self.rate,
                "window": d.window,
                "hop": d.hop,
                "max_utterance": d.max_utterance,
                "segment": d.segment,
                "segmentations": ["windows", "vad"],
                "vad": d.vad,
                "vad_detectors": (["silero"] if self.silero else []) + ["voicing"],
                "max_upload_bytes": lim.max_upload_bytes,
                "max_duration": lim.max_duration,
                "request_timeout": lim.request_timeout,
                "max_pending": lim.max_pending,
                "max_batch": self.batcher.max_batch,
                "same_speaker": self.same_speaker,
                "max_files": lim.max_files,
            },
        }

    def health(self):
        with self._lock:
            pending = self.pending
        return {"status": "ok", "pending": pending, "max_pending": self.limits.max_pending,
                "waiting_in_batcher": self.batcher.waiting, "served": self.served,
                "batches": self.batcher.batches, "largest_batch": self.batcher.largest_batch}

    # -- analysis -------------------------------------------------------

    def options(self, raw):
        return _parse_options(raw, self.defaults, len(self.class_names))

    def analyze(self, data, filename, options, *, deadline=None, cancelled=None):
        """Bytes of one audio file -> the ``infer.py --format json`` dict.

        Raises:
            ServiceError: 413 (too long), 422 (not readable audio), 408
                (past ``deadline``), 400 (bad options).
        """
        from speechmodel import inference
        from speechmodel import stream as S
        from speechmodel.audio import AudioError, iter_blocks, load_audio, read_info

        name = os.path.basename(filename or "") or "upload"
        path = os.path.join(self.tmpdir, f"{uuid.uuid4().hex}.audio")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                info = read_info(path)
            except AudioError as exc:
                raise ServiceError(422, f"{name}: {exc.reason}", kind=exc.kind) from None
            if info.duration > self.limits.max_duration:
                raise ServiceError(
                    413, f"{name}: the audio lasts {info.duration:.1f} s; this service takes at most "
                    f"{self.limits.max_duration:g} s", kind="too_long",
                )
            if info.frames == 0:
                raise ServiceError(422, f"{name}: the file holds no samples", kind="no_samples")
            try:
                predictor = inference.Predictor(
                    self.model, window=options["window"], hop=options["hop"],
                    max_utterance=self.defaults.max_utterance, segment=options["segment"],
                    vad=options["vad"], min_confidence=options["min_confidence"],
                )
            except ValueError as exc:
                raise ServiceError(400, str(exc), kind="bad_parameter") from None

            def classify(waves):
                return self.batcher.classify(waves, deadline=deadline, cancelled=cancelled)

            try:
                if options["segment"] == "windows" and info.duration <= self.defaults.max_utterance:
                    waveform = load_audio(path, sample_rate=self.rate)
                    probs = classify([waveform])[0]
                    prediction = inference.Prediction(
                        name, np.asarray(probs, np.float32), self.class_names, info.duration,
                        no_speech=not waveform_has_speech(waveform, sample_rate=self.rate),
                    )
                else:
                    analyzer = S.StreamAnalyzer(
                        classify, sample_rate=self.rate, class_names=self.class_names,
                        segment=options["segment"], window=options["window"], hop=options["hop"],
                        vad=predictor.vad, max_utterance=self.defaults.max_utterance,
                    )
                    blocks = iter_blocks(path, sample_rate=self.rate, block_seconds=30.0)
                    prediction = S.analyze_blocks(blocks, analyzer, name)
                prediction.with_min_confidence(options["min_confidence"])
            except AudioError as exc:
                raise ServiceError(422, f"{name}: {exc.reason}", kind=exc.kind) from None
            except TimeoutError:
                raise ServiceError(408, f"{name}: the request took longer than "
                                   f"{self.limits.request_timeout:g} s", kind="timeout") from None
            return {
                "model": self.model.describe(),
                "class_names": self.class_names,
                "settings": predictor.settings,
                "results": [prediction.to_dict(top_k=options["top_k"])],
            }
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def analyze_speaker(self, uploads, options, *, deadline=None, cancelled=None):
        """Several files of one speaker -> the ``infer.py --same_speaker
        --format json`` dict, a result per upload in order (``error`` for
        one that cannot be analysed: the others go on).

        Args:
            uploads: ``[(filename, bytes)]``.
            options: as ``analyze``'s.
            deadline: ``time.monotonic()`` past which nothing starts.
            cancelled: a ``threading.Event``; once set, nothing starts.

        Raises:
            ServiceError: 400 (the model has no speaker normalisation, no
                file or too many), 413 (too long in all), 408 (past
                ``deadline`` before the analysis starts).
        """
        from speechmodel import inference
        from speechmodel.audio import AudioError, read_info

        if not self.same_speaker:
            raise ServiceError(
                400, "this service's model was not trained with speaker normalisation "
                "(train.py --set model.speaker_normalization=true): it cannot be adapted to a speaker; "
                "use /v1/classify", kind="unsupported",
            )
        if not uploads or len(uploads) > self.limits.max_files:
            raise ServiceError(
                400, f"send 1 to {self.limits.max_files} audio files of one speaker; received {len(uploads)}",
                kind="bad_form",
            )
        try:
            predictor = inference.Predictor(
                self.model, window=options["window"], hop=options["hop"],
                max_utterance=self.defaults.max_utterance, segment=options["segment"],
                vad=options["vad"], same_speaker=True, min_confidence=options["min_confidence"],
            )
        except ValueError as exc:
            raise ServiceError(400, str(exc), kind="bad_parameter") from None
        folder = tempfile.mkdtemp(dir=self.tmpdir)
        try:
            paths, names, unreadable, total = [], [], {}, 0.0
            for n, (filename, data) in enumerate(uploads):
                name = os.path.basename(filename or "") or f"upload-{n + 1}"
                path = os.path.join(folder, f"{n}.audio")
                with open(path, "xb") as f:
                    f.write(data)
                paths.append(path)
                names.append(name)
                if not data:
                    unreadable[path] = "the upload is empty (0 bytes)"
                    continue
                try:
                    total += read_info(path).duration
                except AudioError:
                    pass  # Reported by the analysis, with the others.
            if total > self.limits.max_duration:
                raise ServiceError(
                    413, f"the {len(uploads)} files last {total:.1f} s in all; this service takes at most "
                    f"{self.limits.max_duration:g} s", kind="too_long",
                )
            late = deadline is not None and time.monotonic() > deadline
            if late or (cancelled is not None and cancelled.is_set()):
                raise ServiceError(408, f"the request took longer than {self.limits.request_timeout:g} s",
                                   kind="timeout")
            readable = [p for p in paths if p not in unreadable]
            report = predictor.predict(readable) if readable else None
            by_path = dict(zip(readable, report.results)) if report is not None else {}
            results = []
            for path, name in zip(paths, names):
                if path in unreadable:
                    results.append({"file": name, "error": unreadable[path]})
                    continue
                result = by_path[path]
                if isinstance(result, inference.Failure):
                    results.append({"file": name, "error": result.reason})
                else:
                    results.append({**result.to_dict(top_k=options["top_k"]), "file": name})
            return {
                "model": self.model.describe(),
                "class_names": self.class_names,
                "settings": predictor.settings,
                "results": results,
            }
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self):
        self.batcher.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def deadline_after(seconds):
    return time.monotonic() + seconds
