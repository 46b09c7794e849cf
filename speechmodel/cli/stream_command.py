"""The stream half of ``infer.py``: ``infer.py -`` (standard input) and
``infer.py --mic``, analysed as the audio arrives (``speechmodel.stream``
does the work; this module checks the flags a stream takes)."""

import sys

from speechmodel.stream import SEGMENTATIONS
from speechmodel.stream import STREAM_FORMATS
from speechmodel.stream import MicrophoneError
from speechmodel.stream import StreamError
from speechmodel.stream import open_source
from speechmodel.stream import run_stream


def run(inputs, *, model, default_model, list_files, output_format, output, top_k, attention,
        window, hop, max_utterance, plot_dir, batch_size, segment, vad, stream, min_confidence=None,
        stdout=None, stderr=None, prog="infer.py", runtime=None, precision="float32"):
    """``infer.py -`` (standard input) and ``infer.py --mic``: checks the
    flags that make sense for a stream, loads the model, then
    ``speechmodel.stream.run_stream``. Returns the exit status."""
    from speechmodel.cli.infer_command import EXIT_USAGE, choose_model

    stderr = stderr or sys.stderr

    def usage(message):
        print(f"{prog}: error: {message}", file=stderr, flush=True)
        return EXIT_USAGE

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
