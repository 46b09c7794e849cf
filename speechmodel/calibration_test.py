import numpy as np
import pytest

from speechmodel import calibration as C


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def overconfident(n=4000, classes=4, true_temperature=2.5, seed=0):
    """Probabilities ``softmax(z)`` whose labels are drawn from
    ``softmax(z / true_temperature)``: calibrated by that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, classes))
    truth = softmax(logits / true_temperature)
    labels = np.array([rng.choice(classes, p=p) for p in truth])
    return softmax(logits), labels


def test_fit_temperature_recovers_the_temperature_and_lowers_the_ece():
    probabilities, labels = overconfident(true_temperature=2.5)
    t = C.fit_temperature(probabilities, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    scaled = C.scale_probabilities(probabilities, t)
    # The ranking (the predicted class) never changes.
    np.testing.assert_array_equal(scaled.argmax(-1), probabilities.argmax(-1))
    np.testing.assert_allclose(scaled.sum(-1), 1, atol=1e-6)
    before = C.expected_calibration_error(probabilities, labels)
    after = C.expected_calibration_error(scaled, labels)
    assert before > 0.1 and after < 0.03
    assert C.negative_log_likelihood(scaled, labels) < C.negative_log_likelihood(probabilities, labels)


def test_scaling_by_one_or_none_changes_nothing():
    p = softmax(np.random.default_rng(1).normal(size=(5, 3)))
    assert C.scale_probabilities(p, None) is p
    np.testing.assert_allclose(C.scale_probabilities(p, 1.0), p)
    # A temperature below 1 sharpens.
    assert (C.scale_probabilities(p, 0.5).max(-1) >= p.max(-1) - 1e-9).all()


def test_ece_of_known_bins():
    # Two results at confidence 0.9: one right, one wrong -> |0.5 - 0.9| = 0.4.
    p = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert C.expected_calibration_error(p, [0, 1]) == pytest.approx(0.4)
    assert C.expected_calibration_error(p, [0, 0]) == pytest.approx(0.1)


def test_confidence_threshold_is_the_lowest_with_the_asked_accuracy():
    # Confidences 0.95 0.9 0.8 0.7 0.6 0.5; right, right, wrong, right, wrong, wrong.
    conf = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    p = np.stack([conf, 1 - conf], axis=1)
    labels = np.array([0, 0, 1, 0, 1, 1])
    assert C.confidence_threshold(p, labels, accuracy=0.75) == (pytest.approx(0.7), pytest.approx(4 / 6), 0.75)
    assert C.confidence_threshold(p, labels, accuracy=1.0) == (pytest.approx(0.9), pytest.approx(2 / 6), 1.0)
    never = np.array([1, 1, 1, 1, 1, 1])
    assert C.confidence_threshold(p, never, accuracy=0.9) == (None, 0.0, None)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="Received"):
        C.fit_temperature(np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="Received"):
        C.fit_temperature(np.full((2, 3), 1 / 3), [0, 5])
    with pytest.raises(ValueError, match="Received: probabilities of shape"):
        C.expected_calibration_error(np.ones(3), [0, 0, 0])
