import numpy as np
import pytest

from speechmodel.training import artifacts


def test_curve_panels_pair_train_and_validation_and_put_the_early_stopping_figure_first():
    history = {
        "epoch": [0.0, 1.0], "accuracy": [0.4, 0.5], "learning_rate": [1e-3, 1e-3],
        "loss": [1.0, 0.8], "uar": [0.3, 0.4], "val_accuracy": [0.5, 0.55],
        "val_loss": [0.9, 0.85], "val_uar": [0.45, 0.5], "val_wa": [0.5, 0.55],
    }
    panels = artifacts.curve_panels(history, monitor="val_uar")
    # val_wa is val_accuracy: not drawn twice.
    assert [name for name, _ in panels] == ["uar", "accuracy", "loss"]
    assert panels[0][1] == [
        ("train uar", [1, 2], [0.3, 0.4]), ("validation uar", [1, 2], [0.45, 0.5])
    ]
    only_wa = {"loss": [1.0], "val_loss": [0.9], "val_wa": [0.5]}
    assert artifacts.curve_panels(only_wa, monitor="val_loss")[-1][1] == [("validation wa", [1], [0.5])]
    # Runs written before training logs had "uar": val_uar gets its own
    # panel, still first.
    old = {"loss": [1.0], "accuracy": [0.5], "val_uar": [0.4], "val_loss": [0.9]}
    assert [n for n, _ in artifacts.curve_panels(old, monitor="val_uar")] == ["uar", "loss", "accuracy"]
    assert artifacts.curve_panels(old, monitor="val_loss")[0][0] == "loss"


def test_a_one_epoch_run_draws_its_points(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = []
    real = plt.Axes.plot

    def plot(self, *args, **kwargs):
        drawn.append((list(args[0]), list(args[1]), kwargs.get("marker"), kwargs.get("label")))
        return real(self, *args, **kwargs)

    path = tmp_path / "curves.png"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(plt.Axes, "plot", plot)
        artifacts.plot_curves(
            path, {"loss": [0.7], "uar": [0.5], "val_loss": [0.69], "val_uar": [0.5]},
            title="fold 1", monitor="val_uar", best_epoch=1,
        )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn[0] == ([1], [0.5], "o", "train uar")
    assert drawn[1] == ([1], [0.5], "o", "validation uar")
    assert all(marker == "o" for _, _, marker, _ in drawn) and len(drawn) == 4
    artifacts.plot_curves(tmp_path / "empty.png", {})
    assert not (tmp_path / "empty.png").exists()
    np.testing.assert_equal(artifacts.read_csv_log(tmp_path / "missing.csv"), {})
