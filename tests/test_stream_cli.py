"""infer.py on streams, as a user runs it: audio piped into ``infer.py -``
and the microphone through PortAudio on a simulated ALSA device."""

import ctypes.util
import json
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.paths import ravdess_files, save_tiny_model

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["neutral", "happy", "sad"]
# Stream against file: the same windows, the same voiced fractions, the
# same probabilities to this tolerance (float32 models, streamed resampling).
PROB_TOL = 1e-4


def command(*args):
    return [sys.executable, str(REPO / "infer.py"), *map(str, args)]


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(extra)
    return env


def infer(*args, stdin=b"", env=None, timeout=300):
    result = subprocess.run(command(*args), input=stdin, capture_output=True, cwd=REPO,
                            timeout=timeout, env=env or environment())
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return result.returncode, result.stdout.decode(), stderr


def ffmpeg_wav_header(rate, channels, size=0xFFFFFFFF):
    """The header ``ffmpeg -i IN -f wav -`` writes to a pipe: unknown RIFF
    and data sizes (0xFFFFFFFF; some writers put 0) and a LIST chunk."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    info = b"INFOISFT" + struct.pack("<I", 14) + b"Lavf60.16.100\x00"
    return (b"RIFF" + struct.pack("<I", size) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"LIST" + struct.pack("<I", len(info)) + info + b"data" + struct.pack("<I", size))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES, seed=3)


@pytest.fixture(scope="module")
def speech():
    """~20 s of real speech with pauses, at 16 kHz."""
    from speechmodel.audio import load_audio

    parts = []
    for f in ravdess_files("Actor_11/*.wav")[:5]:
        parts += [load_audio(f), np.zeros(8000, np.float32)]
    return np.concatenate(parts)


def test_piped_wav_stream_gives_the_file_results_line_by_line(model, speech, tmp_path):
    from speechmodel.audio import resample

    y = resample(speech, orig_sr=16000, target_sr=44100)
    stereo = np.stack([y, 0.5 * y], axis=1)
    path = tmp_path / "talk.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    pcm = sf.read(path, dtype="int16")[0].tobytes()
    stream = ffmpeg_wav_header(44100, 2) + pcm

    # What `infer.py talk.wav --max_utterance 5 --format json` prints (the
    # same code, in this process: one TensorFlow start-up less).
    from speechmodel import inference as I

    loaded = I.load_model(model)
    report = I.Predictor(loaded, max_utterance=5.0).predict([str(path)])
    [expected] = json.loads(I.format_json(report, model=loaded.describe()))["results"]

    # Live: a window is printed (and flushed) before the stream ends.
    proc = subprocess.Popen(command("-", "--model", model, "--format", "jsonl"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=environment())
    try:
        half = len(ffmpeg_wav_header(44100, 2)) + 4 * (44100 * 9)  # 9 s.
        proc.stdin.write(stream[:half])
        proc.stdin.flush()
        first = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert first[0]["type"] == "stream" and first[0]["settings"]["window"] == 4.0
        assert first[1]["type"] == "window" and first[1]["start"] == 0.0
        assert proc.poll() is None  # Still running: the rest has not been sent.
        proc.stdin.write(stream[half:])
        proc.stdin.close()
        rest, err = proc.stdout.read(), proc.stderr.read()
        proc.wait(timeout=300)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.decode()
    lines = first[1:] + [json.loads(line) for line in rest.decode().splitlines()]
    windows = [x for x in lines if x["type"] == "window"]
    assert [(w["start"], w["end"]) for w in windows] == [(w["start"], w["end"]) for w in expected["timeline"]]
    for w, e in zip(windows, expected["timeline"]):
        assert w["voiced"] == pytest.approx(e["voiced"], abs=0.011)
        for c in CLASSES:
            assert w["probabilities"][c] == pytest.approx(e["probabilities"][c], abs=PROB_TOL)
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["count"] == len(windows)
    assert summary["duration"] == pytest.approx(expected["duration"], abs=1e-3)
    assert summary["weighting"] == expected["weighting"] == "voiced"
    for c in CLASSES:
        assert summary["probabilities"][c] == pytest.approx(expected["probabilities"][c], abs=PROB_TOL)


def test_raw_pcm_cut_into_utterances(model, speech):
    from speechmodel.audio import resample

    y = resample(np.concatenate([np.zeros(16000, np.float32), speech]), orig_sr=16000, target_sr=8000)
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    status, out, err = infer("-", "--raw", "--rate", 8000, "--sample-format", "s16le", "--channels", 1,
                             "--segment", "vad", "--model", model, "--top_k", 2, stdin=pcm)
    assert status == 0, err
    lines = out.splitlines()
    pattern = re.compile(r"^ *([0-9.]+)- *([0-9.]+) s  (\w+) +([0-9.]+)  speech ([0-9.]+)  (\w+) [0-9.]+, (\w+) [0-9.]+$")
    utterances = [pattern.match(line) for line in lines[:-1]]
    assert len(utterances) >= 5 and all(utterances), lines
    for m in utterances:  # "     1.23-     4.56 s  happy        0.412  speech 0.95  happy 0.412, sad 0.301"
        start, end = float(m[1]), float(m[2])
        assert 1.0 <= start < end and m[3] in CLASSES and m[6] == m[3] and m[7] in CLASSES
    assert lines[-1].startswith("overall: ") and "utterances" in lines[-1] and "weighting speech" in lines[-1]


def test_stream_usage_errors_are_one_line(model, tmp_path):
    clip = ravdess_files("Actor_11/*.wav")[0]
    for args, stdin, message in (
        (["-"], b"not a wav stream at all", "not a WAV stream"),
        (["-", clip], b"", "analysed alone"),
        (["-", "--format", "json"], b"", "--format for a stream"),
        (["-", "--raw"], b"\x00\x00", "--raw needs --rate"),
        ([clip, "--raw"], b"", "are for a stream"),
    ):
        status, out, err = infer(*args, "--model", model, stdin=stdin)
        assert status == 2 and out == "", (args, err)
        [line] = err.splitlines()
        assert line.startswith("infer.py: error: ") and message in line, (args, line)


def test_closed_standard_input_is_one_line(model):
    # ``infer.py - <&-``: descriptor 0 closed, so Python's sys.stdin is None.
    result = subprocess.run(command("-", "--model", model), capture_output=True, cwd=REPO, timeout=300,
                            env=environment(), preexec_fn=lambda: os.close(0))
    err = result.stderr.decode()
    assert result.returncode == 2 and result.stdout == b"", err
    [line] = err.splitlines()
    assert line.startswith("infer.py: error: standard input is closed"), line


PORTAUDIO = ctypes.util.find_library("portaudio")


def test_microphone_without_an_input_device_says_so_in_one_line(model, tmp_path):
    if PORTAUDIO is None:  # Then the message is about PortAudio itself.
        status, out, err = infer("--mic", "--model", model)
        assert status == 2 and "PortAudio library is not installed" in err and len(err.splitlines()) == 1
        return
    # A machine without sound cards: ALSA's default device does not exist.
    (tmp_path / ".asoundrc").write_text("")
    status, out, err = infer("--mic", "--device", "Studio mic", "--model", model, env=environment(HOME=str(tmp_path)))
    assert status == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("infer.py: error: no input device 'Studio mic'")


@pytest.mark.skipif(PORTAUDIO is None, reason="PortAudio (Debian: libportaudio2) is not installed")
def test_microphone_through_portaudio_on_a_simulated_alsa_device(model, speech, tmp_path):
    """ALSA's file plugin as the default capture device: PortAudio records
    ``speech`` from it (faster than real time: the null device has no
    clock, so blocks may be dropped and counted on stderr)."""
    raw = tmp_path / "mic.f32"
    np.concatenate([speech, np.zeros(16000 * 30, np.float32)]).astype("<f4").tofile(raw)
    (tmp_path / ".asoundrc").write_text(
        f'pcm.!default {{\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "{raw}"\n format "raw"\n}}\n'
    )
    started = time.monotonic()
    status, out, err = infer("--mic", "--model", model, "--max_seconds", 7, "--format", "csv",
                             env=environment(HOME=str(tmp_path)))
    assert status == 0, err
    assert all("dropped" in line for line in err.splitlines()), err
    rows = [line.split(",") for line in out.splitlines()]
    assert rows[0][:4] == ["file", "kind", "start", "end"]
    windows = [r for r in rows[1:] if r[1] == "window"]
    assert [(r[2], r[3]) for r in windows] == [("0.000", "4.000"), ("2.000", "6.000"), ("4.000", "7.000")]
    assert rows[-1][1] == "stream" and rows[-1][4] == "7.000" and rows[-1][5] in CLASSES
    assert time.monotonic() - started < 120
