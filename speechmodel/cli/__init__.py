"""The command lines: ``speechmodel-train`` (``train.py``),
``speechmodel-infer`` (``infer.py``) and ``speechmodel-serve``
(``python -m speechmodel.serve``), console scripts of the installed
package. ``train.py`` and ``infer.py`` at the root of a source checkout run
the same modules.
"""

import sys


def adopt_main_module(module_name, doc):
    """Lets absl's help show a command whose flags are defined in
    ``module_name`` rather than in ``__main__``: the main module gets
    ``doc`` when it has no docstring (a console script), and the module's
    flags become key flags of the main program (absl's ``--help`` lists
    the main program's key flags)."""
    from absl import flags

    main = sys.modules.get("__main__")
    if main is not None and not getattr(main, "__doc__", None):
        main.__doc__ = doc
    if not sys.argv or module_name == "__main__":
        return
    main_name = sys.argv[0]
    for flag in flags.FLAGS.get_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(main_name, flag)
