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


def _published(directory, history):
    directory.mkdir()
    artifacts.write_json(artifacts.staged(directory, "result.json"), {"uar": 0.5})
    artifacts.atomic_write_text(artifacts.staged(directory, "curves.png"), "png")
    artifacts.commit_results(directory)
    (directory / "history.csv").write_text(history)
    return directory


def test_damaged_results_are_named(tmp_path):
    good = "epoch,loss,val_uar\n0,0.9,0.5\n1,0.8,NA\n"
    assert artifacts.damaged_results(_published(tmp_path / "good", good)) == []
    for name, damage, problem in (
        ("header", lambda d: (d / "history.csv").write_text("N\n"), ("history.csv", "its header does not start")),
        ("rows", lambda d: (d / "history.csv").write_text(good + "2,0.7\n"), ("history.csv", "row 3 has 2 cells")),
        ("order", lambda d: (d / "history.csv").write_text("epoch,loss\n0,1\n0,1\n"), ("history.csv", "row 2 is epoch")),
        ("result", lambda d: (d / ".results" / "result.json").write_text('{"uar": 0.'), ("result.json", "")),
        ("missing", lambda d: (d / ".results" / "curves.png").unlink(), ("curves.png", "its file is missing")),
    ):
        directory = _published(tmp_path / name, good)
        damage(directory)
        [(found, why)] = artifacts.damaged_results(directory)
        assert found == problem[0] and why.startswith(problem[1]), (name, found, why)
    kept = artifacts.set_aside(tmp_path / "header")
    assert kept == str(tmp_path / "header.damaged") and not (tmp_path / "header").exists()
    (tmp_path / "header").mkdir()
    assert artifacts.set_aside(tmp_path / "header") == str(tmp_path / "header.damaged-2")


def test_a_run_started_at_the_same_moment_is_told_who_holds_the_directory(tmp_path):
    import fcntl
    import os
    import threading

    # The first process has the lock but has not written its name yet.
    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    writer = threading.Timer(0.3, lambda: os.write(fd, b'{"pid": 4242, "host": "h"}'))
    writer.start()
    try:
        with pytest.raises(artifacts.DirectoryLocked, match=r"in use by another run \(process 4242 on h\)"):
            with artifacts.lock_directory(tmp_path):
                pass
    finally:
        writer.join()
        os.close(fd)
