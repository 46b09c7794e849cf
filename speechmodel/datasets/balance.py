"""Class balance for training sets: oversampling and class weights.

Zhang et al. (2021) balance the training data before training. Two standard
tools, in pure numpy:

* :func:`oversample`: random oversampling of the minority classes up to the
  majority count. Apply it to the **training** indices of a fold only:
  duplicating validation or test utterances would distort the scores.
* :func:`class_weights`: "balanced" weights ``n / (n_present * count_c)``
  as scikit-learn's ``compute_class_weight("balanced")``, for a loss
  weighted by class instead of resampling.
"""

import numpy as np


def _labels_array(labels, n=None, *, name="labels"):
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D. Received: shape={labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`{name}` must hold integer class indices. Received: dtype={labels.dtype}"
        )
    if n is not None and labels.size != n:
        raise ValueError(
            f"`{name}` must have one entry per index. Received: {labels.size} "
            f"labels for {n} indices"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"`{name}` must be >= 0. Received: min={labels.min()}")
    return labels.astype(np.int64)


def oversample(indices, labels, *, seed):
    """Random oversampling of minority classes to the majority class count.

    Args:
        indices: 1-D int array of training indices (e.g. ``fold.train``).
        labels: 1-D int array, the class of each entry of ``indices``
            (``labels[j]`` is the class of ``indices[j]``).
        seed: int seed; the same seed gives the same result.

    Returns:
        int64 array: ``indices`` in their order, followed by the added
        duplicates (drawn with replacement within each minority class, in
        class order). Every class present then has the majority count.
        Shuffle it when batching.

    Raises:
        ValueError: mismatched lengths or non-integer labels.
    """
    indices = np.asarray(indices)
    if indices.ndim != 1:
        raise ValueError(f"`indices` must be 1-D. Received: shape={indices.shape}")
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"`indices` must be integers. Received: dtype={indices.dtype}")
    indices = indices.astype(np.int64)
    labels = _labels_array(labels, indices.size)
    if indices.size == 0:
        return indices
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    extra = []
    for c, count in zip(classes, counts):
        if count < target:
            members = indices[labels == c]
            extra.append(rng.choice(members, size=target - count, replace=True))
    if not extra:
        return indices.copy()
    return np.concatenate([indices] + extra)


def class_weights(labels, n_classes):
    """ "Balanced" class weights: ``n_samples / (n_present * count_c)``.

    Args:
        labels: 1-D int array of class indices in ``[0, n_classes)``.
        n_classes: number of classes of the model.

    Returns:
        dict ``class index -> float`` for every class in
        ``range(n_classes)``. Equal to scikit-learn's
        ``compute_class_weight("balanced", ...)`` when every class occurs;
        a class absent from ``labels`` gets 0.0 (it has no sample to weigh).

    Raises:
        ValueError: empty labels, or labels outside ``[0, n_classes)``.
    """
    if (
        isinstance(n_classes, bool)
        or not isinstance(n_classes, (int, np.integer))
        or n_classes < 1
    ):
        raise ValueError(
            f"`n_classes` must be a positive int. Received: n_classes={n_classes!r}"
        )
    labels = _labels_array(labels)
    if labels.size == 0:
        raise ValueError("Cannot compute class weights of zero labels.")
    if labels.max() >= n_classes:
        raise ValueError(
            f"`labels` holds classes outside [0, {n_classes}). Received: max={labels.max()}"
        )
    counts = np.bincount(labels, minlength=n_classes)
    present = counts > 0
    weights = np.zeros(n_classes, dtype=np.float64)
    weights[present] = labels.size / (present.sum() * counts[present])
    return {int(c): float(w) for c, w in enumerate(weights)}
