"""Run-directory files, written atomically.

Every file is written to a temporary name in the same directory and renamed
into place, so an interrupted run never leaves a half-written file that looks
complete.
"""

import csv
import io
import json
import os
import tempfile

import numpy as np


def atomic_write_bytes(path, data):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide results from others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def save_weights_atomic(model, path):
    """``model.save_weights(path)`` through a temporary file and a rename, so
    a kill mid-write never leaves a half-written ``.weights.h5``."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"A weights file must end in .weights.h5. Received: path={path!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(path, payload):
    atomic_write_text(path, json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


PREDICTION_COLUMNS = ("file", "speaker", "fold", "true", "predicted")


def predictions_table(rows, class_names):
    """CSV text: file, speaker, fold, true, predicted, p_<class>..."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*PREDICTION_COLUMNS, *(f"p_{c}" for c in class_names)])
    for row in rows:
        writer.writerow(
            [row["file"], row["speaker"], row["fold"], row["true"], row["predicted"],
             *(f"{p:.6f}" for p in row["probabilities"])]
        )
    return buffer.getvalue()


def write_predictions(path, rows, class_names):
    atomic_write_text(path, predictions_table(rows, class_names))


def read_predictions(path):
    """Rows of a predictions CSV, probabilities as float lists."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        classes = [c[2:] for c in reader.fieldnames if c.startswith("p_")]
        rows = []
        for r in reader:
            rows.append(
                {
                    "file": r["file"], "speaker": r["speaker"], "fold": r["fold"],
                    "true": r["true"], "predicted": r["predicted"],
                    "probabilities": [float(r["p_" + c]) for c in classes],
                }
            )
    return rows, classes


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_confusion(path, confusion, class_names, *, title=""):
    """Row-normalised confusion matrix (recall per true class) with counts."""
    plt = _figure()
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)
    size = 1.2 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(normalised, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{normalised[i, j]:.2f}\n({int(confusion[i, j])})",
                    ha="center", va="center", fontsize=7,
                    color="white" if normalised[i, j] > 0.6 else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save_figure(fig, path)
    plt.close(fig)


def plot_curves(path, history, *, title=""):
    """Training curves: one panel per metric, train and validation."""
    plt = _figure()
    names = [k for k in history if not k.startswith("val_") and k not in ("epoch", "lr", "learning_rate")]
    names = names or list(history)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(range(1, len(history[f"val_{name}"]) + 1), history[f"val_{name}"], label=f"val {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    _save_figure(fig, path)
    plt.close(fig)


def read_csv_log(path):
    """keras.callbacks.CSVLogger output -> {column: [values]}."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    history = {}
    for row in rows:
        for key, value in row.items():
            try:
                history.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                pass
    return history
