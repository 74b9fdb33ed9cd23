"""budgetguard: guards an OpenAI organisation's spend.

The pipeline is visible in the sub-packages: ``providers`` (each provider's admin
API: OpenAI's, to read usage and costs and to act on its controls),
``simulator`` (a faithful stand-in for that API), and the stages built on top of them.
"""

import sys

__all__ = ["__version__"]

__version__ = "0.1.0"

# httpx imports its own command-line client (rich, pygments and click: ~4 MB and ~15 ms)
# whenever those happen to be installed, and typer installs them. budgetguard never runs
# that client; a None entry makes httpx fall back to its stub, as when they are missing.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
