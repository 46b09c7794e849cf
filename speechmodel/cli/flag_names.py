"""Flag spellings: ``--top-k`` and ``--top_k`` alike, for every command."""


def normalize_flag_names(argv, known):
    """``--top-k=3`` -> ``--top_k=3`` (and ``--no-attention`` ->
    ``--noattention``) for the flags in ``known``, so that both spellings
    work; other arguments, and everything after ``--``, are left alone."""
    known = set(known)
    out = []
    for n, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[n:])
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, sep, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if name in known:
            out.append(f"--{name}{sep}{value}")
        elif name.startswith("no") and name[2:].lstrip("_") in known:
            out.append(f"--no{name[2:].lstrip('_')}{sep}{value}")
        else:
            out.append(arg)
    return out
