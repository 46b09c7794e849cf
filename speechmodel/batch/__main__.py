"""``python -m speechmodel.batch``: the ``speechmodel-batch`` command."""

from speechmodel.cli.batch import run

if __name__ == "__main__":
    run()
