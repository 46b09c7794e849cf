import keras
import numpy as np
import pytest

from speechmodel.layers.speaker_normalization import SpeakerNormalization
from speechmodel.layers.speaker_normalization import population_statistics
from speechmodel.layers.speaker_normalization import speaker_statistics
from speechmodel.layers.speaker_normalization import standardize


def test_statistics_are_over_every_segment_of_every_utterance():
    a = np.array([[[1.0, 10.0]], [[3.0, 10.0]]])  # 2 segments, 1 block, 2 dims
    b = np.array([[[5.0, 40.0]]])  # 1 segment
    mean, variance = speaker_statistics([a, b, np.zeros((0, 1, 2))])
    np.testing.assert_allclose(mean, [[3.0, 20.0]])
    np.testing.assert_allclose(variance, [[8.0 / 3.0, 200.0]])
    with pytest.raises(ValueError, match="at least one segment"):
        speaker_statistics([np.zeros((0, 1, 2))])


def test_a_prior_counts_as_that_many_segments_of_an_average_speaker():
    own = np.array([[2.0], [4.0]])  # mean 3, variance 1, 2 segments
    prior = (np.array([0.0]), np.array([4.0]))
    # The prior weighs as 2 segments: the mean of {own} and {prior} pooled,
    # i.e. as if two segments with mean 0 and variance 4 were added.
    mean, variance = speaker_statistics([own], prior=prior, prior_segments=2)
    pooled = np.array([[2.0], [4.0], [-2.0], [2.0]])  # 2 "prior" segments: mean 0, variance 4
    np.testing.assert_allclose(mean, pooled.mean(0))
    np.testing.assert_allclose(variance, pooled.var(0))
    # Weightless, it is the speaker's own; overwhelming, the prior.
    np.testing.assert_allclose(speaker_statistics([own], prior=prior, prior_segments=0)[0], [3.0])
    heavy = speaker_statistics([own], prior=prior, prior_segments=1e9)
    np.testing.assert_allclose(heavy[0], [0.0], atol=1e-6)
    np.testing.assert_allclose(heavy[1], [4.0], atol=1e-6)
    with pytest.raises(ValueError, match="Received: prior_segments=3, prior=None"):
        speaker_statistics([own], prior_segments=3)


def test_population_is_the_average_speaker_not_the_pooled_spread():
    # Two speakers with the same spread around very different means: the
    # population variance is theirs, not the (much larger) pooled one.
    one = speaker_statistics([np.array([[0.0], [2.0]])])
    two = speaker_statistics([np.array([[100.0], [102.0]])])
    mean, variance = population_statistics([one, two])
    np.testing.assert_allclose(mean, [51.0])
    np.testing.assert_allclose(variance, [1.0])
    with pytest.raises(ValueError, match="Received: none"):
        population_statistics([])


def test_layer_equals_standardize_and_each_speaker_ends_centred():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(7, 3, 4)) * [1.0, 10.0, 0.1, 5.0] + 3.0).astype("float32")
    mean, variance = speaker_statistics([x])
    layer = SpeakerNormalization()
    layer.set_statistics(mean, variance)
    out = np.asarray(layer(x[None]))[0]
    np.testing.assert_allclose(out, standardize(x, mean, variance), atol=1e-5)
    np.testing.assert_allclose(out.reshape(-1, 4).mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.reshape(-1, 4).std(0), 1.0, atol=1e-3)


def test_starts_as_the_identity_and_refuses_bad_statistics():
    layer = SpeakerNormalization()
    x = np.arange(12, dtype="float32").reshape(1, 2, 3, 2)
    np.testing.assert_allclose(np.asarray(layer(x)), x / np.sqrt(1 + 1e-5), rtol=1e-6)
    with pytest.raises(ValueError, match=r"Received: mean.shape=\(2,\)"):
        layer.set_statistics(np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="must not be negative"):
        layer.set_statistics(np.zeros((3, 2)), -np.ones((3, 2)))
    with pytest.raises(ValueError, match="Received: epsilon=0"):
        SpeakerNormalization(epsilon=0)
    with pytest.raises(ValueError, match="Received: input_shape"):
        SpeakerNormalization()(np.zeros((2, 3), "float32"))


def test_statistics_are_saved_with_the_model(tmp_path):
    inputs = keras.Input((None, 2, 3))
    model = keras.Model(inputs, SpeakerNormalization(name="norm")(inputs))
    rng = np.random.default_rng(1)
    model.get_layer("norm").set_statistics(rng.normal(size=(2, 3)), rng.uniform(1, 2, size=(2, 3)))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2, 5, 2, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert not loaded.get_layer("norm").trainable_weights


def test_docstring():
    from speechmodel.tests.test_case import TestCase

    class Doc(TestCase):
        def runTest(self):
            self.run_docstring_test(SpeakerNormalization)

    Doc().runTest()
