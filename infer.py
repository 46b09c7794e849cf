"""Recognise the emotion of speech recordings.

    python infer.py recording.wav other.flac
    python infer.py recordings/ --format json --output emotions.json
    python infer.py "calls/**/*.wav" --list more_files.txt --top_k 3
    python infer.py meeting.wav --window 4 --hop 2 --timeline --plot plots/
    python infer.py clip.wav --model runs/my-run/model.keras --attention

Inputs are files, directories (searched recursively for .wav .flac .ogg
.aiff .aif .mp3), glob patterns (quoted or not) and --list files (one path
per line; blank and # lines skipped; relative paths are relative to the
list file). Any sample rate, bit depth or channel count is accepted.

Without --model, the model shipped in models/ravdess_default.keras (beside
this script) is used; see its model card models/ravdess_default.md for what
it was trained on and how well it does. --model takes a model.keras written
by train.py (or a classical model.skz).

Files up to --max_utterance seconds are analysed whole. Longer recordings
are streamed (bounded memory, whatever the length) and analysed in windows
of --window seconds every --hop seconds: the output gets an emotion
timeline, and the overall emotion is the mean of the window probabilities
weighted by each window's seconds of voiced speech (periodicity, not
loudness, so quiet voices count as much as loud ones; silence and noise
barely count).

Output: a table (default), --format json (one object per file with every
class probability, the timeline of long files and, with --attention, the
attention weight of each segment) or --format csv; to stdout or --output
FILE (written atomically).

A file that cannot be analysed (missing, empty, corrupt, not audio) gets
one line on stderr naming it and the reason; the other files are still
analysed and reported.

Exit status:
  0  every file was analysed;
  1  some inputs failed (each reported on stderr), the others were analysed;
  2  usage error, no audio file to analyse, or a model that cannot be used.

Flags may be written with underscores or dashes (--top_k or --top-k).
"""

import os
import sys
from pathlib import Path

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
HERE = Path(__file__).resolve().parent

flags.DEFINE_string("model", None, "Model file: a model.keras written by train.py (or a classical model.skz). Default: models/ravdess_default.keras beside infer.py.")
flags.DEFINE_multi_string("list", [], "A file listing inputs, one per line (repeatable).")
flags.DEFINE_enum("format", "table", ["table", "json", "csv"], "Output format.")
flags.DEFINE_string("output", None, "Write the output to this file (atomically) instead of stdout.")
flags.DEFINE_integer("top_k", 1, "Also report the K most probable emotions.", lower_bound=1)
flags.DEFINE_bool("attention", False, "Report the attention weight of every segment (with its start and end), for SpeechModel (DCNN-BLSTMwA) models.")
flags.DEFINE_float("window", 4.0, "Window length in seconds for long recordings.")
flags.DEFINE_float("hop", 2.0, "Seconds between window starts (at most --window).")
flags.DEFINE_float("max_utterance", 20.0, "Files longer than this many seconds are analysed in windows.")
flags.DEFINE_string("plot", None, "Write a PNG per file to this directory: log-mel spectrogram with the emotion timeline (long files) or the probabilities (clips).")
flags.DEFINE_integer("batch_size", 32, "Files (or windows) per batch.", lower_bound=1)
flags.DEFINE_bool("timeline", False, "Table format: add a row per window of long recordings.")


def _parse_flags(argv):
    if any(a in ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?") for a in argv[1:]):
        app.usage(shorthelp=True, writeto_stdout=True)
        sys.exit(0)
    from speechmodel.inference import normalize_flag_names

    try:
        return FLAGS(normalize_flag_names(argv, FLAGS))
    except flags.Error as exc:
        print(f"infer.py: error: {exc}\nTry --help.", file=sys.stderr)
        sys.exit(2)


def main(argv):
    from absl import logging

    logging.set_verbosity(logging.ERROR)  # Failures get one line each, below.
    from speechmodel import inference

    return inference.run(
        argv[1:],
        model=FLAGS.model,
        default_model=str(HERE / inference.DEFAULT_MODEL),
        list_files=FLAGS.list,
        output_format=FLAGS.format,
        output=FLAGS.output,
        top_k=FLAGS.top_k,
        attention=FLAGS.attention,
        window=FLAGS.window,
        hop=FLAGS.hop,
        max_utterance=FLAGS.max_utterance,
        plot_dir=FLAGS.plot,
        batch_size=FLAGS.batch_size,
        timeline=FLAGS.timeline,
    )


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
