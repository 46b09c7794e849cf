"""Package layout (the metadata is in pyproject.toml).

The repository keeps the corpus loaders in a top-level ``datasets/`` folder
(``import datasets`` in a source checkout). Installed, a top-level package of
that name would shadow Hugging Face's ``datasets``, so the build maps the
folder to ``speechmodel.datasets`` (its modules import each other
relatively; the library reaches them as ``from speechmodel import
datasets``). ``configs/`` becomes ``speechmodel/configs`` (data only), where
``speechmodel-train`` finds ``configs/<dataset>.json``.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["speechmodel", "speechmodel.*"])
    + ["speechmodel.datasets", "speechmodel.configs"],
    package_dir={"speechmodel.datasets": "datasets", "speechmodel.configs": "configs"},
)
