"""Pictures of a prediction: the log-mel spectrogram (time x mels, dB)
over the emotion timeline (long recordings) or the probability bars
(clips), with the attention weights over the spectrogram when present.
``render_plot`` gives the PNG bytes, ``plot_prediction`` writes them.
"""

import io
import os

import numpy as np

from speechmodel.inference.writing import write_bytes


def plot_prediction(prediction, spectrogram, path):
    """Writes a PNG: the log-mel spectrogram (time x mels, dB) over the
    emotion timeline (windowed files) or the probability bars (clips),
    with the attention weights over the spectrogram when present."""
    write_bytes(render_plot(prediction, spectrogram), path)


def render_plot(prediction, spectrogram):
    """The PNG bytes of ``plot_prediction``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = prediction.class_names
    duration = max(prediction.duration, 1e-3)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 2]}
    )
    spectrogram = np.asarray(spectrogram)
    if spectrogram.size:
        top.imshow(
            spectrogram.T, origin="lower", aspect="auto", cmap="magma",
            extent=[0, duration, 0, spectrogram.shape[1]],
        )
    top.set_ylabel("mel band")
    top.set_xlim(0, duration)
    top.set_title(
        f"{os.path.basename(prediction.file)}: {prediction.label} "
        f"({prediction.confidence:.2f})"
        if prediction.probabilities is not None
        else f"{os.path.basename(prediction.file)}: no speech"
    )
    if prediction.attention:
        twin = top.twinx()
        centres = [(s.start + s.end) / 2 for s in prediction.attention]
        twin.plot(centres, [s.weight for s in prediction.attention], "c.-", label="attention")
        twin.set_ylabel("attention")
        twin.set_ylim(bottom=0)
    if prediction.timeline:
        from matplotlib.colors import ListedColormap

        colors = [plt.cm.tab10(c % 10) for c in range(len(names))]
        centres = np.array([(w.start + w.end) / 2 for w in prediction.timeline])
        probs = np.stack([w.probabilities for w in prediction.timeline])
        # Background: the winning emotion from each window's start to the
        # next window's start.
        edges = [w.start for w in prediction.timeline] + [prediction.timeline[-1].end]
        bottom.pcolormesh(
            edges, [0, 1], np.argmax(probs, axis=1)[None].astype(float),
            cmap=ListedColormap(colors), vmin=-0.5, vmax=len(names) - 0.5,
            alpha=0.2, shading="flat",
        )
        for c, name in enumerate(names):
            bottom.plot(centres, probs[:, c], color=colors[c], label=name)
        bottom.set_xlim(0, duration)
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("time (s)")
        bottom.set_ylabel("probability")
        bottom.legend(fontsize=7, ncol=min(4, len(names)), loc="upper right")
    else:
        top.set_xlabel("time (s)")
        bars = prediction.probabilities
        bottom.bar(range(len(names)), np.zeros(len(names)) if bars is None else bars, color="tab:blue")
        bottom.set_xticks(range(len(names)), names, rotation=30, ha="right")
        bottom.set_ylim(0, 1)
        bottom.set_ylabel("probability")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
