import io

import numpy as np

from speechmodel.inference import plots
from speechmodel.inference.results import Prediction, Segment, Window

NAMES = ["angry", "calm", "sad"]
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_clip_plot_with_attention_is_a_png(tmp_path):
    p = Prediction("dir/clip.wav", np.array([0.2, 0.7, 0.1]), NAMES, 2.0,
                   attention=[Segment(0.0, 0.64, 0.4), Segment(0.32, 0.96, 0.6)])
    spectrogram = np.random.default_rng(0).normal(-40, 10, (200, 64)).astype(np.float32)
    data = plots.render_plot(p, spectrogram)
    assert data.startswith(PNG) and png_size(data) == (1000, 600)
    plots.plot_prediction(p, spectrogram, tmp_path / "out" / "clip.png")
    assert (tmp_path / "out" / "clip.png").read_bytes().startswith(PNG)


def test_timeline_plot_and_an_empty_spectrogram():
    timeline = [Window(2.0 * k, 2.0 * k + 4.0, np.array([0.6, 0.3, 0.1]), 0.5, NAMES) for k in range(5)]
    p = Prediction("long.wav", np.array([0.6, 0.3, 0.1]), NAMES, 12.0, timeline=timeline, weighting="voiced")
    assert plots.render_plot(p, np.zeros((0, 64), np.float32)).startswith(PNG)
    # A VAD file without speech has no probabilities: still a plot.
    silent = Prediction("quiet.wav", None, NAMES, 3.0)
    assert plots.render_plot(silent, np.zeros((300, 64), np.float32)).startswith(PNG)
