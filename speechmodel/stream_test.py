import io
import struct
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from speechmodel import inference as I
from speechmodel import stream as S
from speechmodel.audio import load_audio
from tests.paths import ravdess_files, save_tiny_model

RATE = 16000
CLASSES = ["angry", "happy", "sad"]


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


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES, seed=5)
    return I.load_model(path)


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


# --- Analysis. --------------------------------------------------------------


def test_stream_windows_equal_the_long_file_analysis(model, audio, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")
    report = I.Predictor(model, max_utterance=5.0, window=4.0, hop=1.5).predict([str(path)])
    [expected] = report.predictions
    y = load_audio(path)
    analyzer = S.StreamAnalyzer(S.waveform_classifier(model, batch_size=4), sample_rate=RATE,
                                class_names=CLASSES, window=4.0, hop=1.5)
    got, peak = [], 0
    for i in range(0, len(y), 1234):  # Odd blocks: windows straddle them.
        got += analyzer.add(y[i : i + 1234])
        peak = max(peak, len(analyzer._buffer))
    got += analyzer.finish()
    assert [(w.start, w.end) for w in got] == [(w.start, w.end) for w in expected.timeline]
    assert [w.voiced for w in got] == [w.voiced for w in expected.timeline]
    np.testing.assert_allclose(np.stack([w.probabilities for w in got]),
                               np.stack([w.probabilities for w in expected.timeline]), atol=1e-5)
    summary = analyzer.prediction("-", timeline=[])
    np.testing.assert_allclose(summary.probabilities, expected.probabilities, atol=1e-5)
    assert summary.weighting == expected.weighting == "voiced"
    assert peak <= 4 * RATE + 1234  # One window plus one block.


def test_vad_segmentation_classifies_utterances_and_skips_silence(model, audio):
    classify = S.waveform_classifier(model)
    calls = []

    def counting(waves):
        calls.append([len(w) for w in waves])
        return classify(waves)

    gap = np.zeros(2 * RATE, np.float32)
    a, b = audio[: 4 * RATE], audio[7 * RATE : 11 * RATE]
    y = np.concatenate([gap, a, gap, gap, b, gap])
    analyzer = S.StreamAnalyzer(counting, sample_rate=RATE, class_names=CLASSES, segment="vad", vad="silero")
    got = []
    for i in range(0, len(y), RATE // 4):
        got += analyzer.add(y[i : i + RATE // 4])
        # Memory: at most one utterance, its context and a block.
        assert len(analyzer._buffer) <= (20 + 2 * 1.0 + 1) * RATE
    got += analyzer.finish()
    assert got and all(isinstance(u, S.Utterance) for u in got)
    assert all(2.0 <= u.start and u.end <= 6.0 or 10.0 <= u.start and u.end <= 14.0 for u in got), got
    # Each utterance is classified with 1 s of context on each side, never
    # reaching into its neighbours.
    assert analyzer.settings["context"] == 1.0
    edges = [0.0] + [x for u in got for x in (u.start, u.end)] + [len(y) / RATE]
    for n, u in enumerate(got):
        left, right = max(edges[2 * n], u.start - 1.0), min(edges[2 * n + 3], u.end + 1.0)
        seg = y[int(round(left * RATE)) : int(round(right * RATE))]
        np.testing.assert_allclose(u.probabilities, classify([seg])[0], atol=1e-5)
    assert sum(len(c) for c in calls) == len(got)
    pred = analyzer.prediction("x", got)
    durations = np.array([u.end - u.start for u in got])
    expected = (durations[:, None] * np.stack([u.probabilities for u in got])).sum(0) / durations.sum()
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-6)
    d = pred.to_dict(top_k=2)
    assert d["segmentation"] == "vad" and d["weighting"] == "speech" and len(d["timeline"]) == len(got)
    assert set(d["timeline"][0]) == {"start", "end", "label", "confidence", "probabilities", "speech"}


def test_no_speech_gives_no_emotion(model):
    analyzer = S.StreamAnalyzer(S.waveform_classifier(model), sample_rate=RATE, class_names=CLASSES,
                                segment="vad", vad="silero")
    noise = 0.01 * np.random.default_rng(1).standard_normal(5 * RATE).astype(np.float32)
    assert analyzer.add(noise) + analyzer.finish() == []
    pred = analyzer.prediction("quiet.wav", [])
    assert pred.label == "no speech" and pred.top_k(3) == []
    d = pred.to_dict(top_k=2)
    assert d["label"] == "no speech" and d["probabilities"] is None and d["timeline"] == []
    report = I.Report([pred], CLASSES)
    assert "no speech" in I.format_table(report, top_k=2)
    assert I.format_csv(report, top_k=2).splitlines()[1].count(",") == I.format_csv(report, top_k=2).splitlines()[0].count(",")


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


def test_microphone_at_the_device_rate_gives_the_file_results(model, audio, tmp_path):
    from speechmodel.audio import resample

    y48 = resample(audio[: 9 * RATE], orig_sr=RATE, target_sr=48000)
    fake = FakeSoundDevice(y48, rate=48000)
    out, err = io.StringIO(), io.StringIO()
    status = S.run_stream(model, source_args={"mic": True, "device": "USB", "sounddevice": fake},
                          output_format="jsonl", max_seconds=8.0, stdout=out, stderr=err)
    assert status == 0, err.getvalue()
    assert fake.opened == [48000]  # The device refused 16 kHz: resampled here.
    import json

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["type"] == "stream" and "Fake USB mic" in lines[0]["source"]
    windows = [x for x in lines if x["type"] == "window"]
    assert [(w["start"], w["end"]) for w in windows] == [(0, 4), (2, 6), (4, 8)]
    assert lines[-1]["type"] == "summary" and lines[-1]["duration"] == pytest.approx(8.0)
    # The same 8 s given as a file (resampled the same way) give the same windows.
    path = tmp_path / "mic.wav"
    sf.write(path, y48[: 8 * 48000], 48000, subtype="FLOAT")
    [expected] = I.Predictor(model, max_utterance=1.0).predict([str(path)]).predictions
    for w, e in zip(windows, expected.timeline):
        assert w["voiced"] == pytest.approx(e.voiced, abs=0.05)
        for c in CLASSES:
            assert w["probabilities"][c] == pytest.approx(float(e.probabilities[CLASSES.index(c)]), abs=1e-3)


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
    err = io.StringIO()
    assert S.run_stream(_FakeModel(), source_args={"mic": True}, stderr=err) == 2
    [line] = err.getvalue().splitlines()
    assert line.startswith("infer.py: error: no microphone")


class _FakeModel:
    sample_rate = RATE
    class_names = CLASSES

    def describe(self):
        return {}

    def predict_waveforms(self, waveforms, lengths, *, attention):
        raise AssertionError("not reached")
