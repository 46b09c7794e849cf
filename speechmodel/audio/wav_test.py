import numpy as np
import soundfile as sf

from speechmodel.audio.wav import open_soundfile, wav_layout
from tests import reliability_files as rf


def test_wav_layout_reads_the_chunks_of_a_wav_and_nothing_else(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(160), 16000, subtype="PCM_16")
    layout = wav_layout(path)
    assert layout.fmt[:6] == (1, 1, 16000, 32000, 2, 16)
    assert layout.chunk(b"data") == (320, layout.size - 320) and layout.end == layout.size
    assert not layout.streamed
    other = tmp_path / "a.flac"
    sf.write(other, np.zeros(160), 16000, format="FLAC")
    assert wav_layout(other) is None and wav_layout(tmp_path / "missing.wav") is None


def test_a_wav_written_to_a_pipe_is_opened_to_its_end(tmp_path):
    for size_field in (0, 0xFFFFFFFF):
        path = tmp_path / f"piped_{size_field}.wav"
        path.write_bytes(rf.streamed(size_field))
        assert wav_layout(path).streamed
        with open_soundfile(str(path)) as f:
            assert f.frames == (path.stat().st_size - 44) // 2
