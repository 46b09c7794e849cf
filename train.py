"""Speaker-independent speech emotion recognition experiments: ``python train.py --help``.

The command lives in ``speechmodel.cli.train`` (installed as
``speechmodel-train``); this script runs it from a source checkout.
"""

from speechmodel.cli import train as _command

__doc__ = _command.__doc__

if __name__ == "__main__":
    _command.run()
