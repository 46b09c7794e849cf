"""Speaker-independent experiments: configs, the fold loop and run artifacts.

``run_experiment(config)`` is what ``train.py`` calls; see
``speechmodel.training.runner``.
"""
