"""budgetguard: guards an OpenAI organisation's spend.

The pipeline is visible in the sub-packages: ``openai_admin`` (read usage and costs),
``simulator`` (a faithful stand-in for that API), and the stages built on top of them.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
