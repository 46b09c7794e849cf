"""Saying how sure a model is: temperature scaling (Guo et al. 2017, *On
Calibration of Modern Neural Networks*) and the figures that judge it.

* ``fit_temperature``: the one scalar ``T`` that makes a model's
  probabilities honest on held-out (validation) speakers, by minimising
  their negative log-likelihood. ``softmax(logits / T)`` keeps the ranking
  of the classes (the predicted emotion never changes); ``T > 1`` softens
  over-confident probabilities.
* ``scale_probabilities``: applies ``T`` to probabilities (``softmax(log p
  / T)``, the same as scaling the logits, since ``log p`` are the logits up
  to a constant). ``speechmodel.layers.TemperatureScaling`` does it inside
  a saved model.
* ``expected_calibration_error``: the gap between confidence and accuracy,
  averaged over confidence bins (15 equal-width bins, weighted by their
  number of results), as in Guo et al.
* ``confidence_threshold``: the lowest confidence above which results are
  right at least a given fraction of the time (``--min_confidence``).
"""

import numpy as np

ECE_BINS = 15
# The temperature is searched in this range (log-uniformly); a model this
# far off would be a bug, not a calibration.
TEMPERATURE_RANGE = (0.05, 20.0)


def _as_probabilities(probabilities):
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            "`probabilities` must be (n, C) with C >= 2 classes. "
            f"Received: probabilities of shape {p.shape}"
        )
    return p


def scale_probabilities(probabilities, temperature):
    """``softmax(log(probabilities) / temperature)`` over the last axis;
    ``temperature`` None or 1 returns them unchanged."""
    if temperature is None or float(temperature) == 1.0:
        return probabilities
    p = np.asarray(probabilities, np.float64)
    logits = np.log(np.clip(p, 1e-12, 1.0)) / float(temperature)
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.asarray(probabilities).dtype)


def negative_log_likelihood(probabilities, labels):
    p = _as_probabilities(probabilities)
    labels = np.asarray(labels, np.int64)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0))))


def fit_temperature(probabilities, labels):
    """The temperature that minimises the negative log-likelihood of
    ``labels`` under ``scale_probabilities(probabilities, T)``.

    Args:
        probabilities: (n, C) of held-out utterances (validation speakers:
            never the test speakers).
        labels: (n,) their true class indices.

    Returns:
        float in ``TEMPERATURE_RANGE``.

    Raises:
        ValueError: no utterances, or labels out of range.
    """
    from scipy.optimize import minimize_scalar

    p = _as_probabilities(probabilities)
    labels = np.asarray(labels, np.int64)
    if len(p) == 0 or len(p) != len(labels):
        raise ValueError(
            "fit_temperature needs as many labels as probability rows, at least one. "
            f"Received: {len(p)} rows, {len(labels)} labels"
        )
    if labels.min() < 0 or labels.max() >= p.shape[1]:
        raise ValueError(f"`labels` must be class indices below {p.shape[1]}. Received: {sorted(set(labels))}")
    low, high = np.log(TEMPERATURE_RANGE)
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(scale_probabilities(p, np.exp(log_t)), labels),
        bounds=(low, high), method="bounded", options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def expected_calibration_error(probabilities, labels, *, bins=ECE_BINS):
    """ECE: ``sum_b n_b / n * |accuracy_b - mean confidence_b|`` over
    ``bins`` equal-width bins of the top probability (``(0, 1/bins]``,
    ...). 0 is perfectly calibrated."""
    p = _as_probabilities(probabilities)
    labels = np.asarray(labels, np.int64)
    if len(p) == 0:
        raise ValueError("expected_calibration_error needs at least one utterance. Received: 0")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() / len(p) * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def confidence_threshold(probabilities, labels, *, accuracy=0.9):
    """The lowest confidence ``P`` such that the results whose top
    probability is at least ``P`` are right at least ``accuracy`` of the
    time.

    Returns:
        ``(P, coverage, accuracy_above)``: the threshold, the fraction of
        results at or above it, and their accuracy; ``(None, 0.0, None)``
        when no threshold reaches ``accuracy``.
    """
    p = _as_probabilities(probabilities)
    labels = np.asarray(labels, np.int64)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    counts = np.arange(1, len(order) + 1)
    ok = hits / counts >= accuracy
    # A threshold keeps every result with a confidence at least as high:
    # only the last of a run of equal confidences is a valid cut.
    sorted_conf = confidence[order]
    last_of_tie = np.append(sorted_conf[1:] < sorted_conf[:-1], True)
    valid = np.flatnonzero(ok & last_of_tie)
    if not valid.size:
        return None, 0.0, None
    k = int(valid[-1])
    return float(sorted_conf[k]), float(counts[k] / len(p)), float(hits[k] / counts[k])


def calibration_figures(probabilities, labels, temperature):
    """``{"n", "ece_before", "ece_after", "nll_before", "nll_after"}`` of
    ``probabilities`` against ``labels``, before and after
    ``scale_probabilities(., temperature)``."""
    p = _as_probabilities(probabilities)
    scaled = scale_probabilities(p, temperature)
    return {
        "n": int(len(p)),
        "ece_before": expected_calibration_error(p, labels),
        "ece_after": expected_calibration_error(scaled, labels),
        "nll_before": negative_log_likelihood(p, labels),
        "nll_after": negative_log_likelihood(scaled, labels),
    }
