import numpy as np
import pytest

from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.tests.test_case import TestCase


def _data(seed=0, n=3):
    rng = np.random.RandomState(seed)
    mask = np.ones((2, n), bool)
    mask[0, 2:] = False
    return {"segments": rng.rand(2, n, 64, 64, 3).astype("float32"), "mask": mask}


class SegmentEncoderTest(TestCase):
    def test_embeddings_equal_the_segment_network_and_zero_padding(self):
        encoder = SegmentEncoder(backbone="alexnet_gap")
        x = _data()
        emb = np.asarray(encoder.predict(x, verbose=0))
        self.assertEqual(emb.shape, (2, 3, 256))
        self.assertEqual(encoder.embedding_dim, 256)
        direct = np.asarray(encoder.segment_network(x["segments"][x["mask"]]))
        np.testing.assert_allclose(emb[x["mask"]], direct, atol=1e-5)
        self.assertTrue(np.all(emb[~x["mask"]] == 0))

    def test_resize_and_preprocessing(self):
        encoder = SegmentEncoder(
            backbone="resnet18", input_size=[96, 80], preprocessing="imagenet"
        )
        names = [layer.name for layer in encoder.segment_network.layers]
        self.assertIn("resize", names)
        self.assertIn("imagenet_preprocessing", names)
        self.assertEqual(encoder.segment_network.get_layer("imagenet_preprocessing").mode, "torch")
        self.assertEqual(tuple(encoder.backbone_model.input_shape), (None, 96, 80, 3))
        self.assertEqual(tuple(encoder(_data(n=2)).shape), (2, 2, 512))

    def test_segment_classifier_shares_the_cnn(self):
        encoder = SegmentEncoder(backbone="alexnet_gap")
        classifier = encoder.segment_classifier(4, dropout=0.1)
        self.assertEqual(tuple(classifier.output_shape), (None, 4))
        before = [np.array(w) for w in encoder.backbone_model.weights]
        classifier.compile(
            optimizer="sgd", loss="sparse_categorical_crossentropy"
        )
        segments = np.random.rand(4, 64, 64, 3).astype("float32")
        classifier.fit(segments, np.array([0, 1, 2, 3]), epochs=1, verbose=0)
        changed = [
            not np.allclose(b, np.asarray(w))
            for b, w in zip(before, encoder.backbone_model.weights)
        ]
        self.assertTrue(all(changed))

    def test_saving(self):
        encoder = SegmentEncoder(backbone="alexnet_gap", preprocessing="tf")
        self.run_model_saving_test(encoder, input_data=_data())

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: preprocessing='vgg'"):
            SegmentEncoder(backbone="alexnet_gap", preprocessing="vgg")
        with pytest.raises(ValueError, match="Received: input_size=\\[1, 2, 3\\]"):
            SegmentEncoder(backbone="alexnet_gap", input_size=[1, 2, 3])
        with pytest.raises(ValueError, match="Received: segment_shape"):
            SegmentEncoder(backbone="alexnet_gap", segment_shape=(64, 64))
