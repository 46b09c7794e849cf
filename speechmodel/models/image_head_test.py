import keras
import pytest

from speechmodel.errors import ParameterError
from speechmodel.models.image_head import POOLINGS, check_head, global_pooling


def test_check_head_quotes_the_bad_value():
    for pooling in POOLINGS:
        check_head(include_top=False, num_classes=None, pooling=pooling)
    check_head(include_top=True, num_classes=3, pooling=None)
    with pytest.raises(ParameterError, match=r"Received: pooling='fc7'"):
        check_head(include_top=False, num_classes=3, pooling="fc7")
    check_head(include_top=False, num_classes=3, pooling="fc7", poolings=(*POOLINGS, "fc7"))
    for bad in (0, 2.0, True, None):
        with pytest.raises(ParameterError, match=f"Received: num_classes={bad!r}"):
            check_head(include_top=True, num_classes=bad, pooling=None)


def test_global_pooling_names_its_layer():
    x = keras.Input((4, 4, 8))
    assert global_pooling(x, None) is x
    for pooling, name in (("avg", "avg_pool"), ("max", "max_pool")):
        out = global_pooling(x, pooling)
        assert tuple(out.shape) == (None, 8) and out._keras_history.operation.name == name
