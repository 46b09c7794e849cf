"""The stream half of ``infer.py``: ``infer.py -`` (standard input) and
``infer.py --mic``, analysed as the audio arrives. ``run`` checks the flags
a stream takes and opens the source (``speechmodel.audio_sources``);
``run_stream`` feeds its blocks to a ``StreamAnalyzer``
(``speechmodel.inference.streaming``) and prints each window or utterance
as one flushed line (``LinePrinter``), then the overall result."""

import json
import os
import sys

import numpy as np

from speechmodel.audio_sources import (
    Microphone,
    MicrophoneError,
    RawStream,
    StreamError,
    WavStream,
    limited,
    mono_blocks,
)
from speechmodel.cli.common import EXIT_USAGE, choose_model, option_problem
from speechmodel.inference.streaming import (
    SEGMENTATIONS,
    SegmentedPrediction,
    StreamAnalyzer,
    Utterance,
    waveform_classifier,
)

STREAM_FORMATS = ("table", "jsonl", "csv")


class LinePrinter:
    """Writes each window or utterance as one flushed line."""

    def __init__(self, out, output_format, class_names, *, top_k=1, file="-"):
        self.out = out
        self.format = output_format
        self.names = list(class_names)
        self.top_k = top_k
        self.file = file

    def _write(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def start(self, model, settings, description):
        if self.format == "jsonl":
            self._write(json.dumps({"type": "stream", "source": description, "model": model,
                                    "class_names": self.names, "settings": settings}))
        elif self.format == "csv":
            import csv
            import io

            header = ["file", "kind", "start", "end", "duration", "label", "confidence"]
            header += [f"p_{c}" for c in self.names]
            header += ["voiced", "weighting"]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(header)
            self._write(buffer.getvalue())

    def _csv(self, values):
        import csv
        import io

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(values)
        self._write(buffer.getvalue())

    def item(self, result):
        kind = "utterance" if isinstance(result, Utterance) else "window"
        if self.format == "jsonl":
            self._write(json.dumps({"type": kind, **result.to_dict()}))
        elif self.format == "csv":
            p = result.probabilities
            self._csv([self.file, kind, f"{result.start:.3f}", f"{result.end:.3f}",
                       f"{result.end - result.start:.3f}", result.label, f"{result.confidence:.6f}",
                       *[f"{float(q):.6f}" for q in p], f"{result.voiced:.4f}", ""])
        else:
            note = "speech" if kind == "utterance" else "voiced"
            top = ""
            if self.top_k > 1:
                order = np.argsort(-result.probabilities, kind="stable")[: self.top_k]
                top = "  " + ", ".join(f"{self.names[i]} {result.probabilities[i]:.3f}" for i in order)
            self._write(f"{result.start:9.2f}-{result.end:9.2f} s  {result.label:<12} "
                        f"{result.confidence:.3f}  {note} {result.voiced:.2f}{top}")

    def summary(self, prediction, count):
        if self.format == "jsonl":
            entry = prediction.to_dict(top_k=self.top_k)
            entry.pop("timeline", None)
            self._write(json.dumps({"type": "summary", "count": count, **entry}))
        elif self.format == "csv":
            p = prediction.probabilities
            if p is None:
                self._csv([self.file, "stream", "0.000", f"{prediction.duration:.3f}",
                           f"{prediction.duration:.3f}", "", "", *[""] * len(self.names), "",
                           prediction.weighting])
            else:
                self._csv([self.file, "stream", "0.000", f"{prediction.duration:.3f}",
                           f"{prediction.duration:.3f}", prediction.label, f"{prediction.confidence:.6f}",
                           *[f"{float(q):.6f}" for q in p], "", prediction.weighting])
        else:
            what = "utterances" if isinstance(prediction, SegmentedPrediction) else "windows"
            if prediction.probabilities is None:
                self._write(f"overall: no speech ({count} {what}, {prediction.duration:.2f} s)")
            else:
                top = ", ".join(f"{n} {q:.3f}" for n, q in prediction.top_k(max(1, self.top_k)))
                if prediction.label != prediction.emotion:  # uncertain, or no speech
                    top = f"{prediction.label} ({top})"
                self._write(f"overall: {top} ({count} {what}, {prediction.duration:.2f} s, "
                            f"weighting {prediction.weighting})")


def open_source(*, mic=False, device=None, raw=False, rate=None, sample_format="s16le", channels=1,
                stdin=None, sample_rate=16000, max_seconds=None, sounddevice=None):
    """The source for ``infer.py -`` or ``--mic``.

    Raises:
        StreamError, MicrophoneError: with a one-line reason.
    """
    if mic:
        return Microphone(device, sample_rate=sample_rate, max_seconds=max_seconds, sounddevice=sounddevice)
    if stdin is None:
        # Python sets sys.stdin to None when descriptor 0 is closed.
        if getattr(sys.stdin, "buffer", None) is None:
            raise StreamError("standard input is closed: nothing to read from - "
                              "(pipe or redirect the audio into it)")
        stdin = sys.stdin.buffer
    if raw:
        if rate is None:
            raise StreamError("--raw needs --rate (the sample rate in Hz)")
        return RawStream(stdin, sample_rate=rate, sample_format=sample_format, channels=channels)
    return WavStream(stdin)


def run_stream(model, *, source_args=None, source=None, output_format="table", top_k=1, window=4.0,
               hop=2.0, segment="windows", vad="auto", max_utterance=20.0, batch_size=32, max_seconds=None,
               min_confidence=None, stdout=None, stderr=None, prog="infer.py"):
    """``infer.py -`` / ``infer.py --mic`` with a loaded model: returns the
    exit status (0, or 1 when the stream could not be read to its end, 2
    when it cannot be opened at all). ``source`` is an opened source, or
    ``source_args`` the ``open_source`` arguments to open one."""
    source_args = dict(source_args or {})
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr

    def error(message, status):
        print(f"{prog}: error: {message}", file=stderr, flush=True)
        return status

    if output_format not in STREAM_FORMATS:
        return error(
            f"--format for a stream must be one of {', '.join(STREAM_FORMATS)} (results are "
            f"printed as they are made). Received: --format={output_format}", 2,
        )
    try:
        analyzer = StreamAnalyzer(
            waveform_classifier(model, batch_size=batch_size), sample_rate=model.sample_rate,
            class_names=model.class_names, segment=segment, window=window, hop=hop, vad=vad,
            max_utterance=max_utterance, min_confidence=min_confidence,
        )
    except (ValueError, RuntimeError) as exc:
        return error(str(exc), 2)
    if source is None:
        try:
            source = open_source(sample_rate=model.sample_rate, max_seconds=max_seconds, **source_args)
        except (StreamError, MicrophoneError) as exc:
            return error(str(exc), 2)
    name = "mic" if isinstance(source, Microphone) else "-"
    printer = LinePrinter(stdout, output_format, model.class_names, top_k=top_k, file=name)
    status = 0
    try:
        try:
            printer.start(model.describe(), analyzer.settings, source.description)
            max_frames = None if max_seconds is None else int(round(max_seconds * model.sample_rate))
            for block in limited(mono_blocks(source, model.sample_rate), max_frames):
                for result in analyzer.add(block):
                    printer.item(result)
        except KeyboardInterrupt:  # Ctrl-C ends a live stream: report it.
            pass
        except (StreamError, MicrophoneError) as exc:
            print(f"{prog}: error: {exc}; the results so far follow", file=stderr, flush=True)
            status = 1
        if getattr(source, "truncated", False):
            print(f"{prog}: warning: the stream ended after {source.bytes_read} of the "
                  f"{source.data_bytes} data bytes its header announced", file=stderr, flush=True)
        if getattr(source, "non_finite", 0):
            print(f"{prog}: warning: the input device sent NaN or infinite samples in "
                  f"{source.non_finite} blocks (set to 0)", file=stderr, flush=True)
        if getattr(source, "dropped", 0):
            print(f"{prog}: warning: {source.dropped} microphone blocks were dropped "
                  "(the analysis fell behind)", file=stderr, flush=True)
        for result in analyzer.finish():
            printer.item(result)
        if analyzer.total == 0:
            return error("the stream holds no audio", max(status, 1))
        # An empty timeline (the lines above gave it): marks the result as
        # windowed and keeps its weighting, as for a long file.
        printer.summary(analyzer.prediction(name, timeline=[]), analyzer.count)
    except BrokenPipeError:  # `... | head`: the reader left; not an error.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return status
    return status


def run(inputs, *, model, default_model, list_files, output_format, output, top_k, attention,
        window, hop, max_utterance, plot_dir, batch_size, segment, vad, stream, min_confidence=None,
        same_speaker=False, stdout=None, stderr=None, prog="infer.py", runtime=None, precision="float32"):
    """``infer.py -`` (standard input) and ``infer.py --mic``: checks the
    flags that make sense for a stream, opens it, loads the model, then
    ``run_stream``. Returns the exit status."""
    stderr = stderr or sys.stderr

    def usage(message):
        print(f"{prog}: error: {message}", file=stderr, flush=True)
        return EXIT_USAGE

    problem = option_problem(output_format=output_format, top_k=top_k, min_confidence=min_confidence)
    if problem:
        return usage(problem)
    if same_speaker:
        return usage("--same_speaker is for files (their statistics need every recording "
                     "first), not for a stream")
    mic = bool(stream.get("mic"))
    if mic and inputs:
        return usage(f"--mic takes no inputs. Received: {' '.join(inputs)}")
    if not mic and (inputs != ["-"] or list_files):
        return usage("- (standard input) is analysed alone: no other inputs or --list with it")
    if mic and stream.get("raw"):
        return usage("--raw describes standard input, not --mic")
    if stream.get("device") is not None and not mic:
        return usage("--device is for --mic")
    if output is not None or plot_dir is not None:
        return usage("--output and --plot are for files; a stream's lines go to stdout as they are made")
    if attention:
        return usage("--attention is for files, not streams")
    max_seconds = stream.get("max_seconds")
    if max_seconds is not None and not max_seconds > 0:
        return usage(f"--max_seconds must be positive. Received: --max_seconds={max_seconds}")
    if output_format not in STREAM_FORMATS:
        return usage(
            f"--format for a stream must be one of {', '.join(STREAM_FORMATS)} (one line per "
            f"window or utterance, as it is made). Received: --format={output_format}"
        )
    if segment not in SEGMENTATIONS:
        return usage(f"--segment must be one of {', '.join(SEGMENTATIONS)}. Received: --segment={segment}")
    if not window > 0 or not 0 < hop <= window:
        return usage(f"--hop must be positive and at most --window. Received: --window={window}, --hop={hop}")
    if segment == "vad":
        from speechmodel import vad as V

        try:
            V.resolve_detector(vad)
        except (V.VADUnavailable, ValueError) as exc:
            return usage(str(exc))
    # The stream is opened first: a bad stream or a missing microphone is
    # reported at once, not after the model has loaded. (The microphone is
    # asked for 16 kHz, the usual model rate; any other is resampled.)
    source_args = {k: stream[k] for k in ("mic", "device", "raw", "rate", "sample_format", "channels") if k in stream}
    try:
        source = open_source(max_seconds=max_seconds, **source_args)
    except (StreamError, MicrophoneError) as exc:
        return usage(str(exc))
    loaded, problem = choose_model(
        model, default_model, top_k=top_k, runtime=runtime, precision=precision
    )
    if problem:
        return usage(problem)
    return run_stream(
        loaded, source=source, output_format=output_format, top_k=top_k, window=window,
        hop=hop, segment=segment, vad=vad, max_utterance=max_utterance, batch_size=batch_size,
        max_seconds=max_seconds, min_confidence=min_confidence, stdout=stdout, stderr=stderr, prog=prog,
    )
