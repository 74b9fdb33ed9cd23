"""The usage fast path (``openai_admin.rows``): what it makes of pages the API should not send."""

from __future__ import annotations

import json

import pytest

from budgetguard.openai_admin.errors import ResponseFormatError
from budgetguard.openai_admin.rows import parse_rows
from budgetguard.store import USAGE_METRICS
from budgetguard.store.rollups import ROLLUP_DIMENSIONS

T0 = 1_795_334_400
H = 3600
COMPLETIONS = "organization.usage.completions.result"


def test_a_list_as_a_dimension_fails_the_page_not_the_reader() -> None:
    twice = {"object": COMPLETIONS, "input_tokens": 1, "output_tokens": 1, "num_model_requests": 1}
    twice["project_id"] = ["a"]
    bucket = {"object": "bucket", "start_time": T0, "end_time": T0 + H, "results": [twice] * 2}
    raw = json.dumps({"object": "page", "data": [bucket], "has_more": False}).encode()
    with pytest.raises(ResponseFormatError, match=r"results\.0\.project_id: a str or null"):
        parse_rows("completions", COMPLETIONS, raw, ROLLUP_DIMENSIONS, USAGE_METRICS)
