"""``python -m budgetguard`` and the ``budgetguard`` script: the CLI (``budgetguard.cli``).

A Ctrl-C while the CLI is still loading gets the same one line and exit code (130) as one
while it runs, not a traceback.
"""

import sys

__all__ = ["main"]


def main() -> None:
    try:
        from budgetguard.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("budgetguard: interrupted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
