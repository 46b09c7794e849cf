import io
import struct
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from speechmodel import audio_sources as S
from speechmodel.audio import load_audio
from tests.paths import ravdess_files

RATE = 16000


def wav_header(*, rate, channels, tag=1, bits=16, data_size=None, riff_size=None, extensible=False,
               list_chunk=True, rf64=False):
    """A WAV header as stream writers make it (ffmpeg: a LIST chunk before
    the data, sizes of 0xFFFFFFFF or 0 when it cannot seek back)."""
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + S._EXTENSIBLE_TAIL
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if list_chunk:
        info = b"INFOISFT" + struct.pack("<I", 14) + b"Lavf60.16.100\x00"
        chunks += b"LIST" + struct.pack("<I", len(info)) + info
    if rf64:
        ds64 = struct.pack("<QQQI", 0, data_size, 0, 0)
        chunks = b"ds64" + struct.pack("<I", len(ds64)) + ds64 + chunks
        data_size = 0xFFFFFFFF
    head = (b"RF64" if rf64 else b"RIFF") + struct.pack("<I", 0xFFFFFFFF if riff_size is None else riff_size) + b"WAVE"
    return head + chunks + b"data" + struct.pack("<I", 0xFFFFFFFF if data_size is None else data_size)


class Trickle(io.RawIOBase):
    """A pipe that gives at most ``step`` bytes per read."""

    def __init__(self, data, step=1000):
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def read(self, n=-1):
        n = self.step if n < 0 else min(n, self.step)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def collect(source):
    blocks = list(source.blocks())
    return np.concatenate(blocks) if blocks else np.zeros((0, source.channels), np.float32)


@pytest.fixture(scope="module")
def audio():
    """14 s of real speech (4 clips), 16 kHz mono float32."""
    return np.concatenate([load_audio(f) for f in ravdess_files("Actor_07/*.wav")[:4]])


# --- Reading streams. -------------------------------------------------------


@pytest.mark.parametrize("data_size", [None, 0, "exact"])
def test_wav_stream_with_unknown_or_exact_sizes_reads_every_sample(data_size, audio):
    pcm = (np.clip(audio, -1, 1 - 2**-15) * 32768).astype("<i2")
    stereo = np.stack([pcm, pcm // 2], axis=1).tobytes()
    size = len(stereo) if data_size == "exact" else data_size
    trailer = b"junk after the data chunk" if data_size == "exact" else b""
    source = S.WavStream(Trickle(wav_header(rate=RATE, channels=2, data_size=size) + stereo + trailer, 999))
    assert (source.sample_rate, source.channels) == (RATE, 2)
    got = collect(source)
    assert got.shape == (len(pcm), 2) and not source.truncated
    np.testing.assert_array_equal(got[:, 0], pcm.astype(np.float32) / 32768)


@pytest.mark.parametrize(
    "tag, bits, dtype, extensible, rf64",
    [(1, 8, "u1", False, False), (1, 24, None, True, False), (1, 32, "<i4", False, True),
     (3, 32, "<f4", True, False), (3, 64, "<f8", False, False)],
)
def test_wav_stream_encodings_match_libsndfile(tag, bits, dtype, extensible, rf64, tmp_path, audio):
    y = audio[: RATE]
    subtype = {(1, 8): "PCM_U8", (1, 24): "PCM_24", (1, 32): "PCM_32", (3, 32): "FLOAT", (3, 64): "DOUBLE"}[(tag, bits)]
    path = tmp_path / "ref.wav"
    sf.write(path, y, RATE, subtype=subtype)
    reference, _ = sf.read(path, dtype="float32")
    raw = path.read_bytes()
    data = raw[raw.index(b"data") + 8 :][: len(y) * bits // 8]
    header = wav_header(rate=RATE, channels=1, tag=tag, bits=bits, data_size=len(data),
                        extensible=extensible, rf64=rf64)
    got = collect(S.WavStream(io.BytesIO(header + data)))[:, 0]
    np.testing.assert_allclose(got, reference, atol=1e-7)


def test_wav_stream_errors_name_the_problem():
    with pytest.raises(S.StreamError, match="empty"):
        S.WavStream(io.BytesIO(b""))
    with pytest.raises(S.StreamError, match="not a WAV stream.*--raw"):
        S.WavStream(io.BytesIO(b"fLaC" + bytes(100)))
    with pytest.raises(S.StreamError, match="cut short in its 'fmt ' chunk"):
        S.WavStream(io.BytesIO(wav_header(rate=RATE, channels=1)[:30]))
    with pytest.raises(S.StreamError, match="ends before its data chunk"):
        S.WavStream(io.BytesIO(wav_header(rate=RATE, channels=1)[:-8]))
    with pytest.raises(S.StreamError, match="unsupported WAV encoding"):
        S.WavStream(io.BytesIO(wav_header(rate=RATE, channels=1, tag=2, bits=4)))
    source = S.WavStream(io.BytesIO(wav_header(rate=RATE, channels=1, data_size=4000) + bytes(1000)))
    assert collect(source).shape == (500, 1) and source.truncated
    header = wav_header(rate=RATE, channels=1, tag=3, bits=32, data_size=8)
    with pytest.raises(S.StreamError, match="NaN"):
        collect(S.WavStream(io.BytesIO(header + np.array([0.1, np.nan], "<f4").tobytes())))


@pytest.mark.parametrize("fmt", ["u8", "s8", "s16le", "s16be", "s24le", "s24be", "s32le", "s32be", "f32le", "f64be"])
def test_raw_stream_formats(fmt):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, (1001, 3))
    if fmt.startswith("s24"):
        ints = np.round(x * 2**23).astype(np.int64)
        b = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        b = b if fmt == "s24le" else b[:, ::-1]
        data, expected = b.tobytes(), ints / 2**23
    else:
        dtype, width = S.SAMPLE_FORMATS[fmt]
        if fmt[0] == "f":
            data, expected = x.astype(dtype).tobytes(), x
        elif fmt == "u8":
            ints = np.round(x * 128 + 128).astype(np.uint8)
            data, expected = ints.tobytes(), (ints.astype(float) - 128) / 128
        else:
            scale = 2.0 ** (8 * width - 1)
            ints = np.round(x * scale).astype(dtype)
            data, expected = ints.tobytes(), ints.astype(float) / scale
    got = collect(S.RawStream(Trickle(data + b"\x01", 77), sample_rate=8000, sample_format=fmt, channels=3))
    assert got.shape == (1001, 3)  # The trailing partial frame is dropped.
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_raw_stream_rejects_bad_formats():
    with pytest.raises(S.StreamError, match="sample format"):
        S.RawStream(io.BytesIO(), sample_rate=8000, sample_format="s12le")
    with pytest.raises(S.StreamError, match="sample rate"):
        S.RawStream(io.BytesIO(), sample_rate=0)


def test_mono_blocks_resample_independently_of_block_sizes(audio, tmp_path):
    y = audio[: 3 * RATE]
    path = tmp_path / "a.wav"
    sf.write(path, np.stack([y, -y], 1) * 0.5 + y[:, None] * 0.25, 44100, subtype="FLOAT")
    reference = load_audio(path)  # Mixed down and resampled to 16 kHz at once.
    stereo = np.stack([y, -y], 1) * 0.5 + y[:, None] * 0.25
    for step in (333, 40000):
        source = S.RawStream(Trickle(stereo.astype("<f4").tobytes(), step), sample_rate=44100,
                             sample_format="f32le", channels=2)
        got = np.concatenate(list(S.mono_blocks(source, RATE)))
        assert len(got) == len(reference)
        np.testing.assert_allclose(got, reference, atol=2e-5)


# --- The microphone, on a simulated device. ---------------------------------


class FakeSoundDevice:
    """sounddevice's interface over a signal played at ``speed`` x real
    time from a thread, like PortAudio's callback."""

    class PortAudioError(Exception):
        pass

    def __init__(self, signal, rate=48000, devices=("Fake USB mic",), speed=20.0, accept_rate=False):
        self.signal, self.rate, self.speed, self.accept_rate = signal, rate, speed, accept_rate
        self.devices = [{"name": n, "max_input_channels": 1, "default_samplerate": rate} for n in devices]
        self.opened = []

    def query_devices(self, device=None, kind=None):
        if kind is None:
            return self.devices
        if not self.devices:
            raise self.PortAudioError("Error querying device -1")
        if device is None:
            return self.devices[0]
        matches = [d for i, d in enumerate(self.devices) if device == i or (isinstance(device, str) and device in d["name"])]
        if not matches:
            raise ValueError(f"No input device matching {device!r}")
        return matches[0]

    def check_input_settings(self, device=None, channels=None, samplerate=None, dtype=None):
        if samplerate != self.rate and not self.accept_rate:
            raise self.PortAudioError("Invalid sample rate")

    def InputStream(self, device, channels, samplerate, dtype, blocksize, callback):
        fake = self

        class Stream:
            def __enter__(self):
                fake.opened.append(samplerate)
                self.stop = threading.Event()
                self.thread = threading.Thread(target=self.play, daemon=True)
                self.thread.start()
                return self

            def play(self):
                for i in range(0, len(fake.signal), blocksize):
                    if self.stop.is_set():
                        return
                    block = fake.signal[i : i + blocksize].reshape(-1, 1).astype(np.float32)
                    callback(block, len(block), None, None)
                    time.sleep(len(block) / samplerate / fake.speed)

            def __exit__(self, *exc):
                self.stop.set()
                self.thread.join()

        return Stream()


def test_microphone_errors_are_one_line(monkeypatch):
    import sys

    with pytest.raises(S.MicrophoneError, match="no input device.*this machine has none"):
        S.Microphone(sounddevice=FakeSoundDevice(np.zeros(10), devices=()))
    with pytest.raises(S.MicrophoneError, match="no input device 'Studio'.*input devices: Fake USB mic"):
        S.Microphone("Studio", sounddevice=FakeSoundDevice(np.zeros(10)))
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(S.MicrophoneError, match="sounddevice package is not installed"):
        S.Microphone()

    class NoPortAudio:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice")
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(S.MicrophoneError, match="PortAudio library is not installed.*libportaudio2"):
        S.Microphone()


def test_limited_stops_after_max_frames():
    blocks = [np.ones((3, 1), np.float32), np.ones((3, 1), np.float32), np.ones((3, 1), np.float32)]
    assert [len(b) for b in S.limited(iter(blocks), 7)] == [3, 3, 1]
    assert [len(b) for b in S.limited(iter(blocks), None)] == [3, 3, 3]
