"""Classification metrics, computed the same way everywhere in the toolkit.

UAR (unweighted average recall) is the macro mean of per-class recall over the
classes that occur in ``y_true``; WA (weighted accuracy) is plain accuracy.
"""

import numpy as np


def compute_metrics(y_true, y_pred, *, class_names):
    """UAR, WA, per-class recall and the confusion matrix.

    Args:
        y_true: int array of true class indices.
        y_pred: int array of predicted class indices.
        class_names: list of class names; index ``i`` names class ``i``.

    Returns:
        dict with ``uar``, ``wa`` (floats in [0, 1]), ``per_class_recall``
        (name -> recall, ``None`` for a class absent from ``y_true``),
        ``confusion`` (rows = true, columns = predicted, as nested lists),
        ``support`` (name -> count) and ``n``.
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    n_classes = len(class_names)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "`y_true` and `y_pred` must have the same length. Received: "
            f"len(y_true)={y_true.size}, len(y_pred)={y_pred.size}"
        )
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics of zero predictions.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"`{name}` holds class indices outside [0, {n_classes}). "
                f"Received: min={y.min()}, max={y.max()}"
            )
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    support = confusion.sum(axis=1)
    present = support > 0
    recall = np.zeros(n_classes, dtype=np.float64)
    recall[present] = np.diag(confusion)[present] / support[present]
    return {
        "uar": float(recall[present].mean()),
        "wa": float(np.diag(confusion).sum() / y_true.size),
        "per_class_recall": {
            name: (float(recall[i]) if present[i] else None)
            for i, name in enumerate(class_names)
        },
        "confusion": confusion.tolist(),
        "support": {name: int(support[i]) for i, name in enumerate(class_names)},
        "n": int(y_true.size),
    }
