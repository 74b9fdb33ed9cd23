"""``python -m budgetguard`` runs the same CLI as the ``budgetguard`` script."""

from budgetguard.cli import main

if __name__ == "__main__":
    main()
