"""Recognise the emotions of many recordings (or embed them), resumably,
in one process or on Ray.

    python -m speechmodel.batch recordings/ --output results/
    python -m speechmodel.batch "calls/**/*.wav" --list more.txt --output results/ --engine ray --workers 2
    python -m speechmodel.batch --manifest corpus.csv --output embeddings/ --embed
    python -m speechmodel.batch archive/ --output results/ --engine ray --address HEAD:6379

Inputs are files, directories (searched recursively for audio), glob
patterns, --list files (one path per line) and --manifest CSV files (the
path column of a manifest: path, emotion, speaker).

DIR gets JSON Lines shards (results-00000.jsonl, ...): one object per
file, with the fields of `infer.py --format json`'s results (file, label,
confidence, probabilities, duration, ... or error) and the file's size and
modification time; and manifest.json (the model and its SHA-256, the
settings, the counts, the runs). Each shard is written atomically when it
is full (--shard_size lines), so a killed run loses at most the shard it
was filling; the same command again skips the files already done (same
path, size and modification time) and never writes a file's line twice.

--embed writes, instead, the segment embeddings of the training cache:
DIR/<model key>/<hash>.npy, the same entries as train.py's embedding cache
(train.py --set training.embedding_cache=DIR reads them, and embeds only
what is missing), and embeddings-00000.jsonl shards naming them.

--engine local (default) runs in this process; --engine ray runs Ray Data
with --workers worker processes (each --threads CPU threads, default 1),
on this machine or, with --address, on a Ray cluster (`ray start --head`
there; every node must see the files at the same paths). A worker that
dies is restarted and its batch retried.

Exit status: 0 every file was analysed; 1 some files failed (their lines
hold the error) or some inputs gave no file; 2 usage error (bad flag, no
input, unusable model or output folder); 3 the engine stopped (the shards
written are kept: run the same command again to finish).

Flags may be written with underscores or dashes (--top_k or --top-k).
"""

import sys

from absl import app, flags


FLAGS = flags.FLAGS

flags.DEFINE_string("output", None, "The output directory (new, empty, or an earlier run's, which is continued).")
flags.DEFINE_string("model", None, "As infer.py --model: a shipped model (default, fast), a model.keras, its run directory or a classical model.skz. Default: default.")
flags.DEFINE_multi_string("list", [], "A file listing inputs, one per line (repeatable).")
flags.DEFINE_multi_string("manifest", [], "A CSV manifest (columns path, emotion, speaker) whose files are inputs (repeatable).")
flags.DEFINE_enum("engine", "local", ["local", "ray"], "local: this process; ray: Ray Data worker processes (this machine, or --address).")
flags.DEFINE_integer("workers", None, "--engine ray: worker processes (default: the CPUs of this machine or the cluster, divided by --threads).", lower_bound=1)
flags.DEFINE_string("address", None, "--engine ray: the Ray cluster to run on (the address `ray start --head` prints, or ray://HOST:10001); default: Ray on this machine, started and stopped by the run.")
flags.DEFINE_enum("runtime", None, ["auto", "onnx", "keras"], "As infer.py --runtime: what runs a .keras model (onnx, keras, or auto; see infer.py --help and docs/onnx.md). Default: $SPEECHMODEL_RUNTIME, else auto. --embed runs keras.")
flags.DEFINE_bool("embed", False, "Write the segment embeddings of the training cache (train.py --set training.embedding_cache=DIR) instead of emotions.")
flags.DEFINE_integer("top_k", 1, "Also report the K most probable emotions.", lower_bound=1)
flags.DEFINE_float("window", 4.0, "Window length in seconds for long recordings.")
flags.DEFINE_float("hop", 2.0, "Seconds between window starts (at most --window).")
flags.DEFINE_float("max_utterance", 20.0, "Files longer than this many seconds are analysed in windows.")
flags.DEFINE_integer("batch_size", 32, "Files per model call (and per task a worker is given).", lower_bound=1)
flags.DEFINE_integer("shard_size", 256, "Lines per shard (a killed run loses at most one shard's work).", lower_bound=1)
flags.DEFINE_integer("threads", None, "CPU threads per worker (default: 1 with --engine ray, all with local).", lower_bound=1)

EXIT_OK = 0
EXIT_FILES_FAILED = 1
EXIT_USAGE = 2
EXIT_ENGINE = 3


def _prog():
    from speechmodel.cli import prog

    name = prog("speechmodel-batch")
    return "speechmodel-batch" if name == "__main__.py" else name


def main(argv):
    from absl import logging

    logging.set_verbosity(logging.ERROR)
    from speechmodel import batch
    from speechmodel.errors import Error
    from speechmodel.progress import format_seconds

    name = _prog()

    def say(line):
        print(f"{name}: {line}", file=sys.stderr, flush=True)

    if FLAGS.output is None:
        say("error: --output DIR is required")
        return EXIT_USAGE
    try:
        summary = batch.run_batch(
            argv[1:], FLAGS.output, model=FLAGS.model, list_files=FLAGS.list, manifests=FLAGS.manifest,
            engine=FLAGS.engine, workers=FLAGS.workers, address=FLAGS.address, runtime=FLAGS.runtime,
            embed=FLAGS.embed, top_k=FLAGS.top_k, window=FLAGS.window, hop=FLAGS.hop,
            max_utterance=FLAGS.max_utterance, batch_size=FLAGS.batch_size, shard_size=FLAGS.shard_size,
            threads=FLAGS.threads, say=say, every=5.0 if sys.stderr.isatty() else 60.0,
        )
    except batch.EngineError as exc:
        say(f"error: {exc}")
        return EXIT_ENGINE
    except OSError as exc:  # Writing the output (a full disk, say).
        say(f"error: cannot write the results ({exc}); the shards written are kept")
        return EXIT_ENGINE
    except Error as exc:  # Usage: options, inputs, model, output folder, a lock.
        say(f"error: {exc}")
        return EXIT_USAGE
    done = summary.analysed + summary.failed
    line = f"{summary.files} files: {summary.analysed} analysed, {summary.failed} failed"
    if summary.skipped:
        line += f", {summary.skipped} done by an earlier run"
        if summary.failed_before:
            line += f" ({summary.failed_before} of them failed)"
    if done and summary.seconds:
        line += (f"; {done} in {format_seconds(summary.seconds)} ({summary.files_per_second:.1f} files/s, "
                 f"{summary.real_time_factor:.1f}x real time)")
    line += f"; {len(summary.shards)} new shard{'' if len(summary.shards) == 1 else 's'} in {summary.output}"
    say(line)
    if summary.input_failures:
        say(f"{len(summary.input_failures)} inputs gave no file (listed above)")
    failed = summary.failed or summary.failed_before or summary.input_failures
    return EXIT_FILES_FAILED if failed else EXIT_OK


def run():
    """The ``speechmodel-batch`` command (and ``python -m speechmodel.batch``)."""
    from speechmodel.cli import adopt_main_module

    adopt_main_module(__name__, __doc__)
    from speechmodel.cli import flags_parser

    app.run(main, flags_parser=flags_parser("speechmodel-batch"))


if __name__ == "__main__":
    run()
