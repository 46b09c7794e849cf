import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from speechmodel.classical.registry import available_classifiers, build_pipeline, register_classifier


def test_registry_has_the_seed_classifiers():
    assert available_classifiers() == ["bagging", "hgb", "knn", "mlp", "rf", "svm"]


def test_pipeline_scales_inside():
    pipeline = build_pipeline("svm", {"C": 3.0}, seed=5)
    assert isinstance(pipeline, Pipeline)
    assert isinstance(pipeline.named_steps["scale"], StandardScaler)
    clf = pipeline.named_steps["clf"]
    assert clf.C == 3.0 and clf.probability and clf.random_state == 5
    assert not build_pipeline("svm", for_search=True).named_steps["clf"].probability


def test_json_lists_become_tuples():
    pipeline = build_pipeline("mlp", {"hidden_layer_sizes": [16, 8]})
    assert pipeline.named_steps["clf"].hidden_layer_sizes == (16, 8)


def test_register_classifier_validates():
    with pytest.raises(ValueError, match="callable"):
        register_classifier("x", None)
