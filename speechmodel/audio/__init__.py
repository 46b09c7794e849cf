"""Audio in: any common file to mono float32 at a fixed sample rate.

One place decides how audio is read. ``load_audio`` reads WAV (8/16/24/32-bit
integer and 32/64-bit float PCM), FLAC, OGG/Vorbis, AIFF (and whatever else
libsndfile reads, MP3 included) at any sample rate and channel count, mixes
down to mono by averaging the channels and resamples with soxr's high-quality
band-limited resampler. The format is recognised from the file's content, not
its extension, so a FLAC file named ``.wav`` loads.

Every failure is an :class:`AudioError` that names the file and the cause, with
a machine-readable ``kind``: ``missing`` (no such file, a broken symbolic
link, a symbolic link loop), ``permission`` (the file, or a directory on
its way, cannot be read), ``not_regular`` (a directory, a named pipe, a
device), ``empty``, ``not_audio``, ``corrupt``, ``truncated``,
``no_samples`` or ``non_finite``. Silence is valid input, not an error.

A WAV file written to a pipe (``ffmpeg ... -f wav -``) cannot go back to
fill in its size fields: they say 0xFFFFFFFF or 0. Such a file is read to
its end.

``tf_load_audio`` makes the same loader usable inside ``tf.data``: it never
raises, it returns the waveform and an error message (empty when the file
loaded), so a pipeline can report the bad file and go on. A graph decoder
(``tf.audio.decode_wav``, tensorflow-io's FLAC op) is used only for a file
``graph_decoder`` proves it decodes exactly, and any error it still raises
falls back to the Python decoder, for that file alone.

File names are handled as the operating system gives them: a name that is
not UTF-8 (Latin-1 bytes, say) travels through TensorFlow as its raw bytes
(``os.fsencode``) and comes back as the same ``str`` (``os.fsdecode``).

The modules: ``errors`` (``AudioError``, ``path_problem``), ``wav`` (WAV
parsing), ``loading`` (``load_audio``, ``iter_blocks``, ``read_info``) and
``graph`` (``tf_load_audio`` and the graph decoders). Their public names are
this package's: ``from speechmodel.audio import load_audio``.
"""

from speechmodel.audio.errors import ERROR_KINDS, AudioError, has_audio_magic, path_problem
from speechmodel.audio.graph import GRAPH_DECODERS, as_str, as_tf_path, graph_decoder, tf_load_audio
from speechmodel.audio.loading import (
    AUDIO_EXTENSIONS,
    DEFAULT_SAMPLE_RATE,
    AudioInfo,
    as_file,
    integrity_warning,
    is_file_like,
    iter_blocks,
    load_audio,
    read_info,
    resample,
    source_name,
    to_mono,
)
from speechmodel.audio.wav import WavLayout, wav_layout
