"""The ``controls:`` section of the rules: what it accepts, and its mistakes where written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budgetguard.rules import RulesError, load_rules_text

RULES = """\
version: 1
controls:
  organization:
    spend_limit: 5000
    spend_alerts: [{at: 4000, email: finops@example.com}]
  projects:
    proj_chatbot:
      spend_limit: 100.005
      model_permissions: {mode: deny_list, models: [o3]}
      hosted_tools: {web_search: false}
    proj_media: {spend_limit: none, model_permissions: none, spend_alerts: []}
"""


def test_controls_load_as_declared() -> None:
    controls = load_rules_text(RULES).controls
    assert controls is not None
    scopes = dict(controls.scopes())
    assert list(scopes) == [None, "proj_chatbot", "proj_media"]
    assert scopes[None].spend_limit == Decimal(5000)
    assert scopes[None].spend_alerts is not None
    assert scopes[None].spend_alerts[0].email == ("finops@example.com",)
    chatbot = scopes["proj_chatbot"]
    assert chatbot.hosted_tools is not None and chatbot.hosted_tools.managed() == {
        "web_search": False
    }
    assert scopes["proj_media"].spend_limit == "none" and scopes["proj_media"].spend_alerts == ()
    with pytest.raises(TypeError):
        controls.projects["proj_x"] = chatbot  # type: ignore[index]


def test_rules_without_controls_have_none() -> None:
    assert load_rules_text("version: 1\n").controls is None


def test_mistakes_are_one_line_each_where_written() -> None:
    text = """\
version: 1
controls:
  projects:
    proj_chatbot:
      spend_limit: 0
      model_permissions: {mode: deny_list, models: ["gpt-4o*"]}
      hosted_tools: {teleport: false}
"""
    with pytest.raises(RulesError) as caught:
        load_rules_text(text, source="r.yaml")
    assert [str(e) for e in caught.value.errors] == [
        "r.yaml:5:20: spend_limit: must be greater than or equal to 0.01",
        "r.yaml:6:53: models (item 1): 'gpt-4o*' is not an exact model id (OpenAI takes no "
        "globs here)",
        "r.yaml:7:22: unknown key 'teleport' (expected one of: code_interpreter, file_search, "
        "image_generation, mcp, web_search)",
    ]
