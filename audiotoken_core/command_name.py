"""The name a command was invoked by, for its usage line (argparse's `prog`).

The same code runs as `python -m train` from a clone, as `python -m audiotoken_train` where it is installed, and
as the console scripts (`audiotoken-train`, ...). A usage line that names another of these fails where the user
is: outside the clone there is no module `train`.
"""

from __future__ import annotations

import os
import sys


def command_name(module: str) -> str:
    """`python -m <module>` when this process runs `module` with -m, else the console script's name.

    `module` is the command's module as the code runs under, e.g. `__spec__.name` of a `__main__.py`'s package,
    so it reads `train...` in the clone and `audiotoken_train...` where installed. Where the command was not
    started from a script of its own (called from Python, `python -c`), `python -m <module>` is the way to run it.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name in (module, f"{module}.__main__"):
        return f"python -m {module}"
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    stem, ext = os.path.splitext(script)
    if not script or script in ("-c", "-m") or ext.lower() == ".py" or stem.startswith("python"):
        return f"python -m {module}"
    return stem if ext.lower() == ".exe" else script
