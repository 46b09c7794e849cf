"""Package layout (the metadata is in pyproject.toml).

The library is the ``speechmodel`` package (the corpus loaders are
``speechmodel.datasets``: no top-level ``datasets`` package is installed,
which would shadow Hugging Face's). ``configs/`` becomes
``speechmodel/configs`` (data only), where ``speechmodel-train`` finds
``configs/<dataset>.json``.

The tests (``*_test.py`` beside each module, ``conftest.py`` files and the
``speechmodel.tests`` helpers) stay in the checkout: the installed package
holds the library only.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class build_py_without_tests(build_py):
    """``build_py`` that leaves out the test modules."""

    def find_package_modules(self, package, package_dir):
        return [
            (pkg, module, path)
            for pkg, module, path in super().find_package_modules(package, package_dir)
            if not module.endswith("_test") and module != "conftest"
        ]


setup(
    packages=find_packages(include=["speechmodel", "speechmodel.*"], exclude=["speechmodel.tests"])
    + ["speechmodel.configs"],
    package_dir={"speechmodel.configs": "configs"},
    cmdclass={"build_py": build_py_without_tests},
)
