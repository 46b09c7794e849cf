"""The ``infer.py`` command without its flags: ``run`` takes the inputs
and options, writes the report (stdout or ``--output``) and returns the
exit status. The flags are in ``speechmodel.cli.infer``; the work is
``speechmodel.inference``'s (used through the package, so that what it
exports is what runs).

Exit status: 0 every file succeeded; 1 some files failed and the others
were processed (or a plot could not be written: the result is kept); 2
usage error, no input, or a model that cannot be used; 3 an error that is
not about one file (an internal error, an output that cannot be written):
nothing is written to ``--output`` and an older ``--output`` file is
removed, so that it is never taken for this run's.

Nothing of the user's is overwritten: an ``--output`` that is one of the
inputs or any existing audio file is refused before any work, and so is a
location that cannot be written.
"""

import io
import os
import sys
import tempfile

from speechmodel import inference
from speechmodel.audio import AUDIO_EXTENSIONS, has_audio_magic  # the one list of endings, of first bytes
from speechmodel.cli.common import EXIT_ERROR, EXIT_FILES_FAILED, EXIT_OK, EXIT_USAGE, choose_model, option_problem

# --same_speaker with fewer recordings than this gets a note: their
# statistics lean mostly on the average speaker's (Predictor's
# speaker_prior), so on the RAVDESS folds 1 or 2 recordings gave 73 % and
# 74 % UAR against 72 % per clip, 5 gave 77 %, 20 or more about the best
# (80 %) (benchmarks/speaker_norm.py).
FEW_RECORDINGS = 5


def _is_audio_file(path):
    """An existing file that holds audio (by its first bytes: any container
    ``speechmodel.audio`` reads) or has an audio extension."""
    return path.lower().endswith(AUDIO_EXTENSIONS) or bool(has_audio_magic(path))


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
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        # Results are written to a new file there and renamed into place.
        return (f"cannot write --output: no file can be created in {parent} ({exc.strerror or exc}). "
                f"Received: --output={output}")
    return None


def write_output(text, output):
    """The results to ``output``: atomically for a file (``write_text``);
    a device or pipe (``/dev/stdout``) is written to, never replaced."""
    if os.path.exists(output) and not os.path.isfile(output):
        with open(output, "wb") as f:
            f.write(inference.encode_text(text))
        return
    inference.write_text(text, output)


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
    same_speaker=False,
    min_confidence=None,
    runtime=None,
    precision="float32",
    stream=None,
    stdout=None,
    stderr=None,
    prog="infer.py",
):
    """The ``infer.py`` command: returns the exit status.

    Args:
        inputs: files, directories and patterns (``collect_inputs``).
        model: a model path; None uses ``default_model``.
        default_model: the model used when ``model`` is None: a shipped
            model's name (``infer.py`` passes ``presets.DEFAULT``,
            ``"default"``) or a path; None: ``model`` is required.
        list_files, output_format, output, top_k, attention, window, hop,
            max_utterance, plot_dir, batch_size, timeline, segment, vad,
            same_speaker, min_confidence, runtime, precision: as the flags.
        stream: the stream options (``mic``, ``device``, ``raw``, ``rate``,
            ``sample_format``, ``channels``, ``max_seconds``), refused here:
            ``infer.py -`` and ``--mic`` are ``speechmodel.cli.stream_command``'s.
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

    def report_warning(prediction):
        if prediction.warning:  # Analysed, on what the file holds.
            print(f"{prog}: warning: {prediction.file}: {prediction.warning}", file=stderr, flush=True)

    problem = option_problem(output_format=output_format, top_k=top_k, min_confidence=min_confidence)
    if problem:
        return usage(problem)
    if any((stream or {}).get(k) for k in ("raw", "device", "max_seconds")):
        return usage("--raw, --device and --max_seconds are for a stream: give - (standard input) or --mic")
    try:
        collected = inference.collect_inputs(inputs, list_files=list_files)
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

    loaded, problem = choose_model(
        model, default_model, top_k=top_k, runtime=runtime, precision=precision
    )
    if problem:
        return usage(problem)
    try:
        predictor = inference.Predictor(
            loaded,
            batch_size=batch_size,
            window=window,
            hop=hop,
            max_utterance=max_utterance,
            attention=attention,
            plot_dir=plot_dir,
            segment=segment,
            vad=vad,
            same_speaker=same_speaker,
            min_confidence=min_confidence,
        )
    except ValueError as exc:
        return usage(str(exc).replace("Received: same_speaker=True", "Received: --same_speaker"))

    def error_exit(message):
        """An error not about one file: one line, exit 3, no stale output."""
        if output is not None and _remove_stale_output(output):
            message += f"; the older {output} was removed so that it is not taken for this run's results"
        print(f"{prog}: error: {message}", file=stderr, flush=True)
        return EXIT_ERROR

    for failure in collected.failures:
        report_failure(failure)
    progress = None
    if len(set(collected.paths)) > 1 and stderr.isatty():
        # On a terminal, a line every few seconds: files done, time left.
        # (Piped or redirected, stderr keeps to one line per bad file.)
        from speechmodel.progress import CountProgress

        bar = CountProgress("analysing", len(set(collected.paths)), every=5.0,
                            say=lambda line: print(line, file=stderr, flush=True))
        progress = lambda done, total: bar.update(done)  # noqa: E731
    try:
        report = predictor.predict(collected.paths, on_failure=report_failure, on_result=report_warning,
                                   progress=progress)
        if progress is not None:
            bar.close()
        report.results = collected.failures + report.results
        if output_format == "json":
            text = inference.format_json(report, top_k=top_k, model=loaded.describe())
        elif output_format == "jsonl":
            text = inference.format_jsonl(report, top_k=top_k)
        elif output_format == "csv":
            text = inference.format_csv(report, top_k=top_k)
        else:
            text = inference.format_table(report, top_k=top_k, timeline=timeline)
    except Exception as exc:  # Not about one file: those are Failures.
        detail = " ".join(str(exc).split())[:300]
        return error_exit(f"internal error, not about one file ({type(exc).__name__}: {detail}); no results were written")
    if same_speaker:
        n = predictor.speaker_files or 0
        note = f"{prog}: --same_speaker: adapted to the speaker with the statistics of {n} recording{'' if n == 1 else 's'}"
        if n < FEW_RECORDINGS:
            note += (f"; with fewer than {FEW_RECORDINGS} recordings they lean mostly on the "
                     "average speaker's, so it changes little (more recordings adapt more: see the model card)")
        print(note, file=stderr)
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
            data = inference.encode_text(text, getattr(stdout, "encoding", None) or "utf-8")
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
