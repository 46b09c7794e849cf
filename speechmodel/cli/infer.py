"""Recognise the emotion of speech recordings.

    python infer.py recording.wav other.flac
    python infer.py recordings/ --format json --output emotions.json
    python infer.py "calls/**/*.wav" --list more_files.txt --top_k 3
    python infer.py meeting.wav --window 4 --hop 2 --plot plots/
    python infer.py clip.wav --model runs/my-run/model.keras --attention
    python infer.py interview.flac --segment vad --format json   # utterances
    ffmpeg -i talk.mp3 -f wav - | python infer.py - --format jsonl
    arecord -f S16_LE -r 16000 -t raw | python infer.py - --raw --rate 16000
    python infer.py --mic --segment vad                        # live, Ctrl-C stops

Inputs are files, directories (searched recursively for .wav .flac .ogg
.aiff .aif .mp3), glob patterns (quoted or not) and --list files (one path
per line; blank and # lines skipped; relative paths are relative to the
list file). Any sample rate, bit depth or channel count is accepted.

Without --model, the shipped model "default" (speechmodel/presets/default.keras:
SpeechModel on frozen Whisper-base embeddings, RAVDESS + nEMO) is used;
"--model fast" is the small CNN model. See their model cards
(speechmodel/presets/default.md, fast.md) for what
it was trained on and how well it does. --model takes a model.keras written
by train.py (or a classical model.skz).

Files up to --max_utterance seconds are analysed whole. Longer recordings
are streamed (bounded memory, whatever the length) and analysed in windows
of --window seconds every --hop seconds: the output gets an emotion
timeline (a row per window in the table). Giving --window (without
--max_utterance) asks for windows: anything longer than one window is
windowed, as speechmodel's classify(window=...) does, and the table lists
the windows (--notimeline leaves them out), and the overall emotion is the mean of the window probabilities
weighted by each window's seconds of voiced speech (periodicity, not
loudness, so quiet voices count as much as loud ones; silence and noise
barely count).

Output: a table (default), --format json (one object per file with every
class probability, the timeline of long files and, with --attention, the
attention weight of each segment) or --format csv; to stdout or --output
FILE (written atomically).

A file that cannot be analysed (missing, unreadable, empty, corrupt, not
audio, too short) gets one line on stderr naming it and the reason; the
other files are still analysed and reported. --output refuses to replace
one of the inputs or any existing audio file, and is checked to be
writable before the work starts; --plot never replaces a file it did not
write (it takes the next free name and says so).

Exit status:
  0  every file was analysed;
  1  some inputs failed (each reported on stderr), the others were analysed
     (or a plot could not be written; the result is kept);
  2  usage error, no audio file to analyse, a model that cannot be used, or
     an --output that cannot be written (checked before any work);
  3  an error not about one file found during the work (internal error,
     --output failing once the results are made, e.g. a full disk): no
     results are written, and an older --output file is removed.

Streams: `infer.py -` reads a WAV stream from standard input (sizes of 0
or 0xFFFFFFFF, as `ffmpeg ... -f wav -` writes, mean "until the end"), or
headerless PCM with --raw --rate R --sample_format F --channels C
(`arecord -f S16_LE -r 16000 -t raw | infer.py - --raw --rate 16000`);
`infer.py --mic [--device NAME]` records from an input device. Each window
(or utterance, with --segment vad) is printed as one line as soon as it is
analysed (--format table, jsonl or csv), then the overall result; memory
stays bounded however long the stream.

--same_speaker says that the inputs are recordings of one speaker: a model
trained with speaker normalisation then standardises their embeddings with
the statistics of all of them (no labels needed) instead of an average
training speaker's; run it once per speaker.

--min_confidence P labels a result whose top probability is below P
`uncertain` (its probabilities are kept). A recording without speech
(digital silence, steady noise) is labelled `no speech`.

--segment vad cuts recordings into utterances at speech boundaries (Silero
VAD, or the voicing detector with --vad voicing); each gets its start, end
and emotion, and silence or noise between them gets none.

Flags may be written with underscores or dashes (--top_k or --top-k).
"""

import sys

from absl import app, flags


FLAGS = flags.FLAGS

flags.DEFINE_string("model", None, "A shipped model (default: Whisper-base front end, RAVDESS + nEMO; fast: the small CNN model), a model.keras written by train.py, its run directory, or a classical model.skz. Default: default.")
flags.DEFINE_multi_string("list", [], "A file listing inputs, one per line (repeatable).")
flags.DEFINE_enum("format", "table", ["table", "json", "jsonl", "csv"], "Output format (jsonl: one JSON object per line; for a stream, per window or utterance as it is made).")
flags.DEFINE_string("output", None, "Write the output to this file (atomically) instead of stdout.")
flags.DEFINE_integer("top_k", 1, "Also report the K most probable emotions.", lower_bound=1)
flags.DEFINE_bool("attention", False, "Report the attention weight of every segment (with its start and end), for SpeechModel (DCNN-BLSTMwA) models.")
flags.DEFINE_float("window", 4.0, "Window length in seconds for long recordings; given, anything longer than one window is windowed (unless --max_utterance is given too).")
flags.DEFINE_float("hop", 2.0, "Seconds between window starts (at most --window).")
flags.DEFINE_float("max_utterance", 20.0, "Files longer than this many seconds are analysed in windows.")
flags.DEFINE_string("plot", None, "Write a PNG per file to this directory: log-mel spectrogram with the emotion timeline (long files) or the probabilities (clips).")
flags.DEFINE_bool("same_speaker", False, "The inputs are one speaker's recordings: a model trained with speaker normalisation standardises them with their own statistics (better with more recordings; see the model card).")
flags.DEFINE_float("min_confidence", None, "Label a result whose confidence is below this probability 'uncertain' (its probabilities are kept); the model card gives a threshold measured on validation speakers. Audio without speech is labelled 'no speech' whatever it is.")
flags.DEFINE_enum("runtime", None, ["auto", "onnx", "keras"], "What runs a .keras model: onnx (ONNX Runtime, no TensorFlow; converted once into the cache), keras, or auto (onnx for a model on a pretrained speech front end, such as the default; keras for a CNN on log-mel segments, such as fast; see docs/onnx.md). Default: $SPEECHMODEL_RUNTIME, else auto.")
flags.DEFINE_enum("precision", "float32", ["float32", "int8"], "ONNX Runtime: int8 runs the encoder's matrix multiplications with int8 weights (faster; see docs/onnx.md for the accuracy measured).")
flags.DEFINE_integer("batch_size", 32, "Files (or windows) per batch.", lower_bound=1)
flags.DEFINE_bool("timeline", None, "Table format: a row per window of windowed recordings. Default: on when --window or --hop is given.")
flags.DEFINE_enum("segment", "windows", ["windows", "vad"], "windows: fixed windows for long recordings (--window, --hop); vad: cut every recording into utterances at speech boundaries (each with its start, end and emotion; silence gets none).")
flags.DEFINE_enum("vad", "auto", ["auto", "silero", "voicing"], "Speech detector for --segment vad: silero (Silero VAD on onnxruntime), voicing (dependency-free periodicity) or auto (silero when installed).")
flags.DEFINE_bool("mic", False, "Analyse the microphone (PortAudio input device) live, until Ctrl-C or --max_seconds.")
flags.DEFINE_string("device", None, "--mic: the input device (index or part of its name); default: the system's default input.")
flags.DEFINE_bool("raw", False, "Standard input (-) is headerless PCM: give --rate, --sample_format and --channels.")
flags.DEFINE_integer("rate", None, "--raw: sample rate in Hz.", lower_bound=1)
flags.DEFINE_enum("sample_format", "s16le", ["u8", "s8", "s16le", "s16be", "s24le", "s24be", "s32le", "s32be", "f32le", "f32be", "f64le", "f64be"], "--raw: sample format.")
flags.DEFINE_integer("channels", 1, "--raw: interleaved channels (mixed down).", lower_bound=1)
flags.DEFINE_float("max_seconds", None, "Streams (- or --mic): stop after this many seconds of audio.")


def _prog():
    """The command's name as the user typed it, for messages."""
    from speechmodel.cli import prog

    return prog("infer.py")


def main(argv):
    from absl import logging

    logging.set_verbosity(logging.ERROR)  # Failures get one line each, below.
    from speechmodel import presets

    inputs = argv[1:]
    stream = {
        "mic": FLAGS.mic,
        "device": FLAGS.device,
        "raw": FLAGS.raw,
        "rate": FLAGS.rate,
        "sample_format": FLAGS.sample_format,
        "channels": FLAGS.channels,
        "max_seconds": FLAGS.max_seconds,
    }
    options = dict(
        model=FLAGS.model,
        default_model=presets.DEFAULT,
        list_files=FLAGS.list,
        output_format=FLAGS.format,
        output=FLAGS.output,
        top_k=FLAGS.top_k,
        attention=FLAGS.attention,
        window=FLAGS.window,
        hop=FLAGS.hop if FLAGS["hop"].present else min(FLAGS.hop, FLAGS.window),
        max_utterance=FLAGS.max_utterance,
        plot_dir=FLAGS.plot,
        batch_size=FLAGS.batch_size,
        segment=FLAGS.segment,
        vad=FLAGS.vad,
        same_speaker=FLAGS.same_speaker,
        min_confidence=FLAGS.min_confidence,
        runtime=FLAGS.runtime,
        precision=FLAGS.precision,
        stream=stream,
        prog=_prog(),
    )
    if "-" in inputs or FLAGS.mic:  # A stream, analysed as it arrives.
        from speechmodel.cli import stream_command

        return stream_command.run(inputs, **options)
    from speechmodel.cli import infer_command

    if FLAGS["window"].present and not FLAGS["max_utterance"].present:
        # As the library's classify(window=): windows asked for apply to
        # anything longer than one.
        options["max_utterance"] = FLAGS.window
    timeline = FLAGS.timeline
    if timeline is None:  # Windows asked for are shown.
        timeline = FLAGS["window"].present or FLAGS["hop"].present
    return infer_command.run(inputs, timeline=timeline, **options)


def run():
    """The ``speechmodel-infer`` command (and ``python infer.py``)."""
    from speechmodel.cli import adopt_main_module

    adopt_main_module(__name__, __doc__)
    from speechmodel.cli import flags_parser

    app.run(main, flags_parser=flags_parser("infer.py"))


if __name__ == "__main__":
    run()
