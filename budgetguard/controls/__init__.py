"""OpenAI's own controls as code: read what the rules' ``controls:`` declare (``live``), diff
it (``plan``, pure) and write it in a safe order, verifying every write (``apply``)."""

from budgetguard.controls.apply import Applied, ApplyReport, apply_plan
from budgetguard.controls.live import Live, read_live
from budgetguard.controls.plan import Change, plan

__all__ = ["Applied", "ApplyReport", "Change", "Live", "apply_plan", "plan", "read_live"]
