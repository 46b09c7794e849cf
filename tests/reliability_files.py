"""Generated audio files that once crashed a whole run (issue #12).

Each is a valid-looking 16 kHz file: libsndfile reads the first five without
complaint, while TensorFlow's graph decoders fail on them (``DecodeWav``,
tensorflow-io's FLAC op). ``SIX`` names them; ``write_six`` writes them.
"""

import io
import struct

import numpy as np
import soundfile as sf

RATE = 16000


def tone(samples=RATE, *, seed=0, frequency=220.0):
    """16-bit PCM samples of a tone with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    y = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.normal(size=samples)
    return (np.clip(y, -1, 1) * 32767).astype("<i2")


def chunk(chunk_id, payload, *, pad=True):
    out = chunk_id + struct.pack("<I", len(payload)) + payload
    return out + b"\0" if pad and len(payload) % 2 else out


def fmt_pcm16(channels=1):
    return struct.pack("<HHIIHH", 1, channels, RATE, RATE * 2 * channels, 2 * channels, 16)


def riff(body, size=None):
    return b"RIFF" + struct.pack("<I", len(body) + 4 if size is None else size) + b"WAVE" + body


def canonical(samples=None):
    data = (tone() if samples is None else samples).tobytes()
    return riff(chunk(b"fmt ", fmt_pcm16()) + chunk(b"data", data))


def fmt_chunk_of_20_bytes(seed=1):
    """cbSize 2 and two extension bytes: DecodeWav wants 16 or 18."""
    return riff(
        chunk(b"fmt ", fmt_pcm16() + struct.pack("<H", 2) + b"\0\0")
        + chunk(b"data", tone(seed=seed).tobytes())
    )


def list_chunk_before_fmt(seed=2):
    """What ffmpeg-made files often start with: DecodeWav expects fmt first."""
    info = b"INFO" + chunk(b"ISFT", b"Lavf58.76.100\0")
    return riff(
        chunk(b"LIST", info) + chunk(b"fmt ", fmt_pcm16()) + chunk(b"data", tone(seed=seed).tobytes())
    )


def odd_chunk_with_pad_byte(seed=3):
    """A 3-byte chunk and its pad byte: DecodeWav does not skip the pad."""
    return riff(
        chunk(b"fmt ", fmt_pcm16()) + chunk(b"junk", b"abc") + chunk(b"data", tone(seed=seed).tobytes())
    )


def stray_bytes_after_data(seed=4):
    """Three bytes after the data chunk: DecodeWav reads past the end."""
    body = chunk(b"fmt ", fmt_pcm16()) + chunk(b"data", tone(seed=seed).tobytes())
    return riff(body) + b"xyz"


def trailing_chunk_larger_than_the_file(seed=5):
    """A last chunk whose size field (0xFFFFFFF0) runs past the end."""
    body = (
        chunk(b"fmt ", fmt_pcm16())
        + chunk(b"data", tone(seed=seed).tobytes())
        + b"LIST" + struct.pack("<I", 0xFFFFFFF0) + b"INFOabcd"
    )
    return riff(body)


def flac_corrupted_mid_stream(seed=6):
    """A 3 s FLAC with 200 bytes of noise in the middle (tensorflow-io)."""
    buffer = io.BytesIO()
    sf.write(buffer, tone(3 * RATE, seed=seed).astype(np.float32) / 32768, RATE, format="FLAC", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    middle = len(data) // 2
    data[middle : middle + 200] = np.random.default_rng(seed).integers(0, 256, 200, dtype=np.uint8).tobytes()
    return bytes(data)


def streamed(size_field, seed=7):
    """A WAV as ``ffmpeg ... -f wav -`` writes it to a pipe: the RIFF and
    data size fields say ``size_field`` (0xFFFFFFFF or 0), the data runs to
    the end of the file."""
    data = tone(seed=seed).tobytes()
    return (
        b"RIFF" + struct.pack("<I", size_field) + b"WAVE" + chunk(b"fmt ", fmt_pcm16())
        + b"data" + struct.pack("<I", size_field) + data
    )


SIX = {
    "fmt20": fmt_chunk_of_20_bytes,
    "list_first": list_chunk_before_fmt,
    "odd_chunk": odd_chunk_with_pad_byte,
    "stray_bytes": stray_bytes_after_data,
    "trailing_chunk": trailing_chunk_larger_than_the_file,
    "corrupt_flac": flac_corrupted_mid_stream,
}

# libsndfile reads these five whole; the FLAC is reported as corrupt.
READABLE = ("fmt20", "list_first", "odd_chunk", "stray_bytes", "trailing_chunk")


def write_six(directory, names=None):
    """Writes the six files (``<name>.wav``, whatever the content) and
    returns ``{name: path}``; ``names`` maps a case to another file name."""
    paths = {}
    for case, make in SIX.items():
        path = directory / ((names or {}).get(case, f"{case}.wav"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        paths[case] = path
    return paths
