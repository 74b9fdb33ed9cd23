"""The JSON Schema says every rule a schema can: each mistake of the rules-error corpus that
``validate`` rejects is rejected by the schema too, but for those only the whole file or
arithmetic can judge; and no file ``validate`` accepts is rejected by it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from budgetguard.notify.manager import load_plugins
from budgetguard.rules import RulesError, load_rules_text
from budgetguard.rules.schema import rules_json_schema
from tests.test_rules_errors import CASES, HEAD, WHOLE_FILES

ROOT = Path(__file__).resolve().parents[1]

#: What a schema cannot judge: a name defined elsewhere in the file, uniqueness across
#: budgets, duration arithmetic, and the environment.
BEYOND_A_SCHEMA = {
    "duplicate-name",  # uniqueness of a property across list items
    "unknown-notifier",  # a name defined under notifiers:
    "threshold-notifier",
    "default-notify",
    "anomaly-baseline",  # baseline longer than window: duration arithmetic
    "sub-day-costs-window",  # whole days: duration arithmetic
    "anomaly-costs",
    "endpoint-costs-defaults",  # what defaults imply for a budget
    "missing-env",  # the environment, not the file
}
#: Not a YAML document a schema is applied to.
NOT_A_DOCUMENT = {"yaml-syntax", "duplicate-key"}


def _corpus() -> list[tuple[str, str]]:
    return [(case, HEAD + body) for case, body, _ in CASES] + [
        (case, text) for case, text, _ in WHOLE_FILES
    ]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = rules_json_schema(load_plugins(autoload=False).settings_models())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _load(text: str) -> Any:
    return YAML(typ="safe").load(io.StringIO(text))


def test_the_schema_rejects_every_mistake_a_schema_can_see(
    validator: jsonschema.Draft202012Validator,
) -> None:
    missed, judged = [], 0
    for case, text in _corpus():
        if case in NOT_A_DOCUMENT:
            continue
        with pytest.raises(RulesError):  # validate rejects each of them
            load_rules_text(text, env={})
        judged += 1
        if validator.is_valid(_load(text)):
            missed.append(case)
    assert sorted(missed) == sorted(BEYOND_A_SCHEMA), missed
    assert (judged, judged - len(missed)) == (54, 45)


@pytest.mark.parametrize(
    "text",
    [
        (ROOT / "rules.example.yaml").read_text(),
        "version: 1\ntimezone: '${TZ}'\n"
        "budgets:\n  - {name: a, limit: '${LIMIT:-5}', window: 1h}\n",
        "version: 1\nbudgets:\n  - {name: a, limit: '12.5', period: day, thresholds: ['50%', 9]}\n"
        "  - {name: b, anomaly: {window: 1h, baseline: 7d, factor: 3}, each: [project, model]}\n"
        "  - {name: c, limit: 1000, window: 7d, metric: images, match: {endpoint: images}}\n"
        "  - {name: d, limit: 10, window: 1d, match: {user: u}, cost_source: estimate}\n"
        "  - {name: e, limit: 10, period: month, forecast: true, match: {line_item: 'x*'}}\n"
        "  - {name: f, limit: 5, window: 1h, match: {endpoint: 'audio_*'}, metric: seconds}\n"
        "digest: {schedule: '*/30 8-18 * * MON-FRI'}\n",
    ],
    ids=["example", "placeholders", "every shape"],
)
def test_files_validate_accepts_the_schema_accepts(
    validator: jsonschema.Draft202012Validator, text: str
) -> None:
    load_rules_text(text, env={"TZ": "UTC", "LIMIT": "5"})
    errors = [e.message for e in validator.iter_errors(_load(text))]
    assert not errors, errors
