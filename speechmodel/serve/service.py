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
import math
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
# The windows a request may ask for (seconds); Limits.max_windows bounds
# their number.
MIN_WINDOW, MAX_WINDOW, MIN_HOP = 0.1, 60.0, 0.05


def _shown(text, limit=40):
    """A client's value quoted in an error, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


class ServiceError(Error):
    """A request that cannot be served: an HTTP status and a message."""

    def __init__(self, status, message, *, kind=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}

    def hiding(self, names):
        """This error with every key of ``names`` (the server's own paths)
        in its message replaced by its value (what the client sent)."""
        message = self.message
        for secret, shown in sorted(names.items(), key=lambda kv: -len(kv[0])):
            message = message.replace(secret, shown)
        return ServiceError(self.status, message, kind=self.kind, headers=self.headers)

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
        request_timeout: seconds from admission (the body received) to
            the answer (408 past it).
        max_pending: requests admitted to the model at once, waiting or
            running (503 with ``Retry-After`` past it). A request is
            admitted only once its body has arrived: a slow upload never
            holds one of these places.
        retry_after: the seconds suggested in ``Retry-After``.
        max_windows: windows (or, for ``segment=vad``, the windows the
            same audio would give) one request may ask for: ``duration /
            hop`` past it is a 400 naming the smallest hop allowed.
        max_uploads: bodies being received at once (503 past it), apart
            from ``max_pending``.
        upload_timeout: seconds for a body to arrive (408 past it).
        min_upload_rate: bytes per second a body must average once
            ``upload_grace`` seconds have passed (408 below it): a client
            trickling its body is let go within seconds.
        upload_grace: the seconds before ``min_upload_rate`` applies.
    """

    max_upload_bytes: int = 25 * 1024 * 1024
    max_duration: float = 600.0
    max_files: int = 64
    request_timeout: float = 60.0
    max_pending: int = 64
    retry_after: int = 1
    max_windows: int = 2000
    max_uploads: int = 256
    upload_timeout: float = 30.0
    min_upload_rate: float = 16 * 1024
    upload_grace: float = 2.0


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
        text = str(raw[name]).strip()
        try:
            if len(text) > 64:  # No usable value is this long.
                raise ValueError(text)
            value = kind(text)
            finite = math.isfinite(value)
        except (TypeError, ValueError, OverflowError):
            raise ServiceError(400, f"{name} must be a number. Received: {name}={_shown(text)}",
                               kind="bad_parameter") from None
        if not finite:
            raise ServiceError(400, f"{name} must be finite. Received: {name}={_shown(text)}",
                               kind="bad_parameter")
        return value

    top_k = number("top_k", int, 1)
    if not 1 <= top_k <= class_count:
        raise ServiceError(400, f"top_k must be between 1 and the model's {class_count} classes. "
                           f"Received: top_k={top_k}", kind="bad_parameter")
    window = number("window", float, defaults.window)
    hop = number("hop", float, defaults.hop if "window" not in raw else min(defaults.hop, window))
    if not (MIN_WINDOW <= window <= MAX_WINDOW) or not MIN_HOP <= hop <= window:
        raise ServiceError(400, f"window must be {MIN_WINDOW:g}-{MAX_WINDOW:g} s and hop at least {MIN_HOP:g} s "
                           f"and at most window. Received: window={window:g}, hop={hop:g}", kind="bad_parameter")
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


def upload_name(filename, default):
    """An upload's name as the client sent it (control characters
    replaced, at most 200 characters), or ``default``."""
    text = "".join(c if c.isprintable() else "?" for c in str(filename or "").strip())
    return (text[:200] + "...") if len(text) > 200 else (text or default)


class Ticket:
    """One admitted request; ``release()`` counts it out (once)."""

    def __init__(self, release):
        self._release = release
        self._lock = threading.Lock()
        self._released = False
        self.handed_off = False  # The analysis thread will release it.

    def release(self):
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release()


class EmotionService:
    """See the module docstring.

    Args:
        model: a loaded InferenceModel (``speechmodel.inference.load_model``).
        limits: Limits.
        defaults: Defaults.
        max_batch, max_wait: the BatchingQueue's.
        tmpdir: the directory for uploads (removed by ``close``); default:
            a new one.
        model_name: how answers name the model (default: its file name;
            never the server's full path).
    """

    def __init__(self, model, *, limits=None, defaults=None, max_batch=32, max_wait=0.005, tmpdir=None,
                 model_name=None):
        self.model = model
        # Answers name the model so, never by the server's path.
        self.model_name = model_name or os.path.basename(str(model.path or "")) or "model"
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
        self.uploading = 0
        self.served = 0
        self.rejected = 0
        from speechmodel import vad as V

        self.silero = V.silero_available()
        # ``POST /v1/classify_speaker`` needs a speaker-normalised model.
        self.same_speaker = getattr(model, "speaker_normalization", None) is not None

    # -- admission ------------------------------------------------------

    def admit_upload(self):
        """Counts a body being received (a Ticket), or ServiceError(503)
        when ``max_uploads`` are already arriving. Apart from ``admit``:
        slow uploads never hold the model's places."""
        return self._count_in("uploading", self.limits.max_uploads, "uploads arriving", self._upload_done)

    def admit(self):
        """Counts a request whose body has arrived in (a Ticket, to
        ``release()`` once), or ServiceError(503) when ``max_pending`` are
        already in."""
        return self._count_in("pending", self.limits.max_pending, "requests in progress", self._release)

    def _count_in(self, counter, limit, what, release):
        with self._lock:
            count = getattr(self, counter)
            if count >= limit:
                self.rejected += 1
                raise self._busy(f"{count} {what}")
            setattr(self, counter, count + 1)
        return Ticket(release)

    def _busy(self, what):
        return ServiceError(503, f"the service is busy ({what}); retry later", kind="busy",
                            headers={"Retry-After": str(self.limits.retry_after)})

    def _upload_done(self):
        with self._lock:
            self.uploading -= 1

    def _release(self):
        with self._lock:
            self.pending -= 1
            self.served += 1

    # -- description ----------------------------------------------------

    def describe(self):
        """``GET /v1/model``."""
        d, lim = self.defaults, self.limits
        return {
            "model": self.model_info(),
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
                "max_windows": lim.max_windows,
                "min_window": MIN_WINDOW,
                "max_window": MAX_WINDOW,
                "min_hop": MIN_HOP,
                "max_uploads": lim.max_uploads,
                "upload_timeout": lim.upload_timeout,
                "min_upload_rate": lim.min_upload_rate,
                "upload_grace": lim.upload_grace,
                "max_batch": self.batcher.max_batch,
                "same_speaker": self.same_speaker,
                "max_files": lim.max_files,
            },
        }

    def model_info(self):
        """The model as answers describe it: its name, not its path on the
        server."""
        return {**self.model.describe(), "path": self.model_name}

    def health(self):
        with self._lock:
            pending, uploading = self.pending, self.uploading
        return {"status": "ok", "pending": pending, "max_pending": self.limits.max_pending,
                "uploading": uploading, "max_uploads": self.limits.max_uploads,
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
        from speechmodel.inference import streaming as S
        from speechmodel.audio import AudioError, integrity_warning, iter_blocks, load_audio, read_info

        name = upload_name(filename, "upload")
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
            self.check_work([(name, info.duration)], options)
            warning = integrity_warning(path, info)  # Said in the answer, as infer.py says it.
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
                    short = self.model.too_short_reason(len(waveform))
                    if short:  # What infer.py says of the same file.
                        raise ServiceError(422, f"{name}: {short}", kind="too_short")
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
                prediction.warning = warning
            except AudioError as exc:
                raise ServiceError(422, f"{name}: {exc.reason}", kind=exc.kind) from None
            except TimeoutError:
                raise ServiceError(408, f"{name}: the request took longer than "
                                   f"{self.limits.request_timeout:g} s", kind="timeout") from None
            return {
                "model": self.model_info(),
                "class_names": self.class_names,
                "settings": predictor.settings,
                "results": [prediction.to_dict(top_k=options["top_k"])],
            }
        except ServiceError as exc:
            raise exc.hiding({path: name, self.tmpdir: "(upload)"}) from None
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def check_work(self, files, options):
        """Refuses (400) a request whose windows, over ``files`` ``[(name,
        seconds)]``, number more than ``limits.max_windows``. A file
        analysed whole is one; ``segment=vad`` is bounded by the audio's
        duration and counts the windows of the default settings."""
        window, hop = options["window"], options["hop"]
        if options["segment"] == "vad":
            window, hop = self.defaults.window, self.defaults.hop
        total, long = 0, 0.0
        for _, seconds in files:
            if options["segment"] == "windows" and seconds <= self.defaults.max_utterance:
                total += 1
            else:
                total += 1 + math.ceil(max(0.0, seconds - window) / hop)
                long += seconds
        if total > self.limits.max_windows:
            what = files[0][0] if len(files) == 1 else f"the {len(files)} files"
            smallest = long / max(1, self.limits.max_windows - len(files))
            raise ServiceError(
                400, f"{what}: windows of {window:g} s every {hop:g} s over {long:.1f} s of audio make "
                f"{total} windows; this service analyses at most {self.limits.max_windows} per request "
                f"(here a hop of at least {smallest:.2f} s)", kind="too_many_windows",
            )
        return total

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
            paths, names, unreadable, total, durations = [], [], {}, 0.0, []
            for n, (filename, data) in enumerate(uploads):
                name = upload_name(filename, f"upload-{n + 1}")
                path = os.path.join(folder, f"{n}.audio")
                with open(path, "xb") as f:
                    f.write(data)
                paths.append(path)
                names.append(name)
                if not data:
                    unreadable[path] = "the upload is empty (0 bytes)"
                    continue
                try:
                    durations.append((name, read_info(path).duration))
                    total += durations[-1][1]
                except AudioError:
                    pass  # Reported by the analysis, with the others.
            if total > self.limits.max_duration:
                raise ServiceError(
                    413, f"the {len(uploads)} files last {total:.1f} s in all; this service takes at most "
                    f"{self.limits.max_duration:g} s", kind="too_long",
                )
            if durations:
                self.check_work(durations, options)
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
                    hidden = ServiceError(422, result.reason).hiding({path: name, folder: "(upload)"})
                    results.append({"file": name, "error": hidden.message})
                else:
                    results.append({**result.to_dict(top_k=options["top_k"]), "file": name})
            return {
                "model": self.model_info(),
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
