"""Run-directory files, written atomically.

Every file is written to a temporary name in the same directory and renamed
into place, so an interrupted run never leaves a half-written file that looks
complete. Every file gets the same mode (0666 minus the umask: 0644 for the
usual umask), never ``mkstemp``'s 0600.

Results that belong together (a fold's ``result.json`` and ``model.keras``;
the run's ``metrics.json`` and ``predictions.csv``) are written to a staging
folder (``staged``) and published at once (``commit_results``): the names a
reader opens are symbolic links through one ``.results`` link, which a single
rename switches to the new set, so a reader finds all of them or none.

``lock_directory`` keeps a second run out of a run directory.
"""

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import time
import uuid

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows): no locking there.
    fcntl = None

from speechmodel.errors import Error
from speechmodel.fileio import (  # noqa: F401 (re-exported: one implementation)
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    default_mode,
    fsync_directory,
    set_default_mode,
)


def save_weights_atomic(model, path):
    """``model.save_weights(path)`` through a temporary file and a rename, so
    a kill mid-write never leaves a half-written ``.weights.h5``."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"A weights file must end in .weights.h5. Received: path={path!r}")
    with atomic_path(path) as tmp:
        model.save_weights(tmp, overwrite=True)


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
    """CSV text: file, speaker, fold, true, predicted, p_<class>...; and
    predicted_per_clip last when the rows have it (a speaker-normalised
    model's prediction from the recording alone)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    single = bool(rows) and all("predicted_per_clip" in r for r in rows)
    writer.writerow(
        [*PREDICTION_COLUMNS, *(f"p_{c}" for c in class_names)]
        + (["predicted_per_clip"] if single else [])
    )
    for row in rows:
        writer.writerow(
            [row["file"], row["speaker"], row["fold"], row["true"], row["predicted"],
             *(f"{p:.6f}" for p in row["probabilities"])]
            + ([row["predicted_per_clip"]] if single else [])
        )
    return buffer.getvalue()


def write_predictions(path, rows, class_names):
    atomic_write_text(path, predictions_table(rows, class_names))


def read_predictions(path):
    """Rows of a predictions CSV, probabilities as float lists."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
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


def curve_panels(history, *, monitor="val_uar"):
    """The panels of ``curves.png``: ``[(title, [(label, epochs, values)])]``.

    One panel per figure, its training and validation curves together
    (``loss`` and ``val_loss``, ``uar`` and ``val_uar``...); a validation
    figure without a training counterpart gets its own panel, except
    ``val_wa``, which is ``val_accuracy`` (WA is the accuracy) when that is
    drawn. The panel of ``monitor`` (the figure early stopping and the
    checkpoint follow) comes first. Epochs are numbered from 1.
    """
    skip = ("epoch", "lr", "learning_rate")
    names = []
    for key in history:
        if key in skip:
            continue
        name = key[4:] if key.startswith("val_") else key
        if name not in names:
            names.append(name)
    if "wa" in names and "accuracy" in names:
        names.remove("wa")
    if monitor:
        target = monitor[4:] if monitor.startswith("val_") else monitor
        if target in names:
            names.remove(target)
            names.insert(0, target)
    panels = []
    for name in names:
        lines = []
        for key, label in ((name, f"train {name}"), (f"val_{name}", f"validation {name}")):
            values = history.get(key)
            if values:
                lines.append((label, list(range(1, len(values) + 1)), list(values)))
        if lines:
            panels.append((name, lines))
    return panels


def plot_curves(path, history, *, title="", monitor="val_uar", best_epoch=None):
    """Training curves: one panel per figure, train and validation
    together, the early-stopping figure (``monitor``) first; every epoch a
    marker (a one-epoch run shows its points), the best epoch a dashed
    line."""
    plt = _figure()
    panels = curve_panels(history, monitor=monitor) or [
        (key, [(key, list(range(1, len(v) + 1)), list(v))]) for key, v in history.items() if v
    ]
    if not panels:
        return
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False,
                             layout="constrained")
    target = monitor[4:] if monitor and monitor.startswith("val_") else monitor
    for ax, (name, lines) in zip(axes[0], panels):
        for label, epochs, values in lines:
            ax.plot(epochs, values, marker="o", markersize=4, label=label)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=0.8,
                       label=f"best epoch ({best_epoch})" if name == target else None)
        ax.set_xlabel("epoch")
        ax.set_title(f"{name} (early stopping)" if name == target else name, fontsize=10)
        longest = max(len(epochs) for _, epochs, _ in lines)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=1))
        ax.set_xlim(0.5, longest + 0.5)
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


# ---------------------------------------------------------------- results

RESULTS_LINK = ".results"
_STAGING = ".results-staging"


def staging_dir(directory):
    """The folder where the next result set of ``directory`` is prepared."""
    path = os.path.join(os.fspath(directory), _STAGING)
    os.makedirs(path, exist_ok=True)
    return path


def staged(directory, name):
    """Where to write result file ``name`` of ``directory`` before
    ``commit_results`` publishes it."""
    return os.path.join(staging_dir(directory), name)


def discard_staged(directory):
    """Drops a staging folder left by an interrupted attempt."""
    shutil.rmtree(os.path.join(os.fspath(directory), _STAGING), ignore_errors=True)


def _replace_with_link(target, link):
    if os.path.islink(link) and os.readlink(link) == target:
        return
    tmp = f"{link}.tmp-{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def commit_results(directory):
    """Publishes every file staged in ``directory`` at once.

    The staged folder becomes ``.results-<id>``; each file ``name`` is seen
    through the link ``directory/name -> .results/name``; the single
    rename of the ``.results`` link to the new folder switches them all
    together (before it, the new names lead nowhere: a reader finds every
    file of the set or none). The previous set is removed afterwards.
    Where symbolic links are not available, the files are renamed into
    place one by one (``result.json`` / ``metrics.json`` last).

    Returns:
        The names published.
    """
    directory = os.fspath(directory)
    staging = os.path.join(directory, _STAGING)
    names = sorted(os.listdir(staging)) if os.path.isdir(staging) else []
    for name in names:
        fd = os.open(os.path.join(staging, name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_directory(staging)
    current = os.path.join(directory, RESULTS_LINK)
    folder = f"{RESULTS_LINK}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    os.rename(staging, os.path.join(directory, folder))
    try:
        for name in names:
            _replace_with_link(os.path.join(RESULTS_LINK, name), os.path.join(directory, name))
        _replace_with_link(folder, current)
    except (OSError, NotImplementedError):
        if os.path.islink(current):
            raise
        # No symbolic links here: plain renames, the commit marker last.
        last = [n for n in names if n in ("result.json", "metrics.json")]
        for name in [n for n in names if n not in last] + last:
            os.replace(os.path.join(directory, folder, name), os.path.join(directory, name))
        shutil.rmtree(os.path.join(directory, folder), ignore_errors=True)
        fsync_directory(directory)
        return names
    fsync_directory(directory)
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if entry.startswith(RESULTS_LINK + "-") and entry != folder and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif (
            os.path.islink(path)
            and os.readlink(path).startswith(RESULTS_LINK + os.sep)
            and not os.path.exists(path)
        ):
            os.unlink(path)  # A name of the previous set that this one lacks.
    return names


def damaged_results(directory):
    """What is wrong with the published results of ``directory`` (a fold
    or the final model): ``[(name, reason)]``, empty when they are whole.
    ``result.json`` must be a JSON object, every published name must lead
    to its file, and ``history.csv`` (one row per epoch) must have the
    ``epoch`` column first, a number of cells per row equal to the header's
    and epochs 0, 1, ... in order."""
    directory = os.fspath(directory)
    problems = []
    try:
        if not isinstance(read_json(os.path.join(directory, "result.json")), dict):
            problems.append(("result.json", "not a JSON object"))
    except (OSError, ValueError) as exc:
        problems.append(("result.json", _reason(exc)))
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.islink(path) and os.readlink(path).startswith(RESULTS_LINK + os.sep) and not os.path.exists(path):
            problems.append((name, "its file is missing"))
    history = os.path.join(directory, "history.csv")
    if os.path.exists(history):
        reason = _history_problem(history)
        if reason:
            problems.append(("history.csv", reason))
    return problems


def _reason(exc):
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(str(text).split())[:120] or type(exc).__name__


def _history_problem(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, ValueError, csv.Error) as exc:
        return _reason(exc)
    if not rows or not rows[0] or rows[0][0] != "epoch":
        return "its header does not start with 'epoch'"
    for n, row in enumerate(rows[1:]):
        if len(row) != len(rows[0]):
            return f"row {n + 1} has {len(row)} cells, the header {len(rows[0])}"
        if row[0] != str(n):
            return f"row {n + 1} is epoch {row[0]!r}, not {n}"
    return None


def set_aside(directory):
    """Renames ``directory`` to ``<directory>.damaged`` (``-2``, ... when
    taken), kept for inspection; returns the new name."""
    directory = os.fspath(directory).rstrip(os.sep)
    target, n = f"{directory}.damaged", 1
    while os.path.lexists(target):
        n += 1
        target = f"{directory}.damaged-{n}"
    os.rename(directory, target)
    return target


# ------------------------------------------------------------------ lock


# Seconds a second process waits for the lock's holder to write its name.
HOLDER_WAIT = 5.0


class DirectoryLocked(Error, RuntimeError):
    """Another process holds the directory; the message names it."""


def _holder(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def lock_directory(directory, *, purpose="run"):
    """Holds an exclusive lock on ``directory`` (``directory/.lock``).

    The lock is the kernel's (``flock``): it ends with the process, even a
    killed one, so a stale lock file never blocks. The file names the
    holder (process id, host, start time, command line) for the message a
    second process gets.

    Raises:
        DirectoryLocked: another process holds it; the message says which.
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, ".lock")
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, default_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            # The holder writes its name right after taking the lock: one
            # that started at the same moment may not have yet.
            holder, waited = _holder(path), 0.0
            while not holder.get("pid") and waited < HOLDER_WAIT:
                time.sleep(0.05)
                waited += 0.05
                holder = _holder(path)
            who = f"process {holder.get('pid', '?')}"
            if holder.get("host"):
                who += f" on {holder['host']}"
            if holder.get("started"):
                who += f", started {holder['started']}"
            if holder.get("command"):
                who += f": {holder['command']}"
            raise DirectoryLocked(
                f"{directory} is in use by another {purpose} ({who}). Wait for it to "
                "finish, or choose another output directory."
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # Removed by the previous holder as we opened it: again.
    try:
        import sys

        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode("utf-8"))
        yield
    finally:
        try:
            os.unlink(path)  # While still holding it.
        except OSError:
            pass
        os.close(fd)
