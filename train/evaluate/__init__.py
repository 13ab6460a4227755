"""AudioToken evaluation: AIS, IIS, AIC and FID with bootstrap CIs, plus reference rows.

`python -m train.evaluate --help` for the command; `evaluate(EvalConfig(...))` from Python.
See docs/evaluation.md for the protocols and the models to download.
"""

from .cli import main
from .config import EvalConfig
from .run import evaluate

__all__ = ["EvalConfig", "evaluate", "main"]
