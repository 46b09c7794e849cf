import keras
import numpy as np
import pytest

from speechmodel.models.segment_classifier import SegmentClassifier
from speechmodel.tests.test_case import TestCase


def _data(seed=0, n=3):
    rng = np.random.RandomState(seed)
    mask = np.ones((2, n), bool)
    mask[0, 1:] = False
    return {"segments": rng.rand(2, n, 64, 64, 3).astype("float32"), "mask": mask}


class SegmentClassifierTest(TestCase):
    def test_mean_of_segment_log_probabilities(self):
        model = SegmentClassifier(num_classes=3, backbone="alexnet_gap")
        x = _data()
        probs = model.predict(x, verbose=0)
        logits = model.segment_model().predict(
            x["segments"].reshape(-1, 64, 64, 3), verbose=0
        ).reshape(2, 3, 3)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        mask = x["mask"][..., None]
        mean = (logp * mask).sum(1) / mask.sum(1)
        expected = np.exp(mean) / np.exp(mean).sum(-1, keepdims=True)
        np.testing.assert_allclose(probs, expected, atol=1e-5)

    def test_padding_segments_leave_predictions_unchanged(self):
        model = SegmentClassifier(num_classes=3, backbone="resnet18")
        x = _data()
        reference = model.predict(x, verbose=0)
        longer = {
            "segments": np.concatenate(
                [x["segments"], np.full((2, 2, 64, 64, 3), 9.0, "float32")], axis=1
            ),
            "mask": np.concatenate([x["mask"], np.zeros((2, 2), bool)], axis=1),
        }
        np.testing.assert_allclose(model.predict(longer, verbose=0), reference, atol=1e-6)

    def test_segment_model_fine_tuning_trains_the_classifier(self):
        model = SegmentClassifier(num_classes=3, backbone="alexnet_gap", dropout=0.2)
        x = _data()
        before = model.predict(x, verbose=0)
        segment_model = model.segment_model()
        segment_model.compile(
            optimizer=keras.optimizers.SGD(0.05),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        segment_model.fit(
            x["segments"].reshape(-1, 64, 64, 3), np.array([0, 1, 2] * 2), epochs=1,
            verbose=0,
        )
        self.assertFalse(np.allclose(model.predict(x, verbose=0), before))

    def test_graph_fit_and_saving(self):
        model = SegmentClassifier(num_classes=3, backbone="alexnet_gap", preprocessing="imagenet")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(_data(), np.array([0, 2]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.run_model_saving_test(model, input_data=_data())

    def test_docstring_example(self):
        self.run_docstring_test(SegmentClassifier)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: num_classes=1.5"):
            SegmentClassifier(1.5)
        with pytest.raises(ValueError, match="Received: dropout=-0.1"):
            SegmentClassifier(3, dropout=-0.1)


def test_saved_files_keep_the_layout_of_files_saved_before_it_used_segment_encoder(tmp_path):
    """SegmentClassifier takes its CNN and segment classifier from a
    SegmentEncoder; its saved weights (paths and shapes) and config keys
    are those of the files saved before (recorded from such a file), so
    that they load unchanged."""
    import hashlib
    import io
    import json
    import zipfile

    import h5py

    path = tmp_path / "baseline.keras"
    SegmentClassifier(3, backbone="cnn4", dropout=0.2).save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        found = []
        weights.visititems(lambda n, o: found.append(f"{n}:{o.shape}") if isinstance(o, h5py.Dataset) else None)
    assert config["registered_name"] == "speechmodel>SegmentClassifier"
    assert sorted(config["config"]) == ["backbone", "dropout", "input_size", "name", "num_classes", "preprocessing",
                                        "segment_shape", "trainable", "trainable_backbone", "weights"]
    assert len(found) == 22
    digest = hashlib.sha256("\n".join(sorted(found)).encode()).hexdigest()
    assert digest == "59baf36fc0153045952a1cf01dd53191094f48682c48d8d1e83d271119f4524a", sorted(found)
