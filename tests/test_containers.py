"""The container files, as far as they can be tested without a Docker engine: the Dockerfile
linted by hadolint and its instructions read, the compose file read, the distribution's name.
(`test_service.py` runs the image's HEALTHCHECK command against a running service, and
`test_cli_hardening.py` the image's `run` without rules.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run(
        [hadolint, "--no-color", "-"],
        input=DOCKERFILE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_bakes_in_no_rules_and_runs_unprivileged() -> None:
    final = instructions(DOCKERFILE.rsplit("\nFROM ", 1)[1].join(["FROM ", ""]))
    copied = [args for word, args in final if word in ("COPY", "ADD")]
    assert copied == ["--from=build /wheels /wheels"], copied  # the wheel, nothing else
    assert not any("rules" in args for args in copied)
    (user,) = [args for word, args in final if word == "USER"]
    assert user.isdigit() and int(user) != 0  # numeric: a runtime can check it is not root
    env = " ".join(args for word, args in final if word == "ENV")
    assert "BUDGETGUARD_RULES=/config/rules.yaml" in env
    assert "BUDGETGUARD_DATABASE_URL=sqlite:////data/budgetguard.db" in env
    (cmd,) = [args for word, args in final if word == "CMD"]
    assert json.loads(cmd) == ["budgetguard", "run"]


def test_compose_passes_only_set_secrets_and_mounts_the_rules_as_a_read_only_file() -> None:
    service = COMPOSE["services"]["budgetguard"]
    env = service["environment"]
    assert isinstance(env, list)
    bare = [item for item in env if "=" not in item]
    assert {"SLACK_WEBHOOK_URL", "SMTP_PASSWORD", "HOOK_SECRET"} <= set(bare)
    for item in env:  # no secret defaults to an empty string
        assert ":-}" not in item and not item.endswith("=")
    (mount,) = service["volumes"]
    assert mount["type"] == "bind" and mount["target"] == "/config/rules.yaml"
    assert mount["read_only"] is True
    assert mount["bind"]["create_host_path"] is False  # missing: an error, not a directory
    assert service["read_only"] is True and service["user"] != "0"
    assert service["cap_drop"] == ["ALL"]


def test_the_distribution_is_budgetguard_openai_and_nothing_installs_the_bare_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "budgetguard-openai"
    assert project["scripts"] == {"budgetguard": "budgetguard.__main__:main"}
    assert "pytest" in " ".join(project["optional-dependencies"]["test"])
    bare = re.compile(r"pip install(?:\s+-\S+)*\s+[\"']?budgetguard(?:[=<>~!\[\"'\s`]|$)")
    for name in ("README.md", "action.yml", "Dockerfile", "docker-compose.yml", ".ci/run"):
        text = (ROOT / name).read_text()
        found = [
            m.group(0) for m in bare.finditer(text) if not text[: m.start()].endswith("never `")
        ]
        assert not found, (name, found)
    assert "never `pip install budgetguard`" in (ROOT / "README.md").read_text()


def test_the_quick_start_states_the_install_each_command_needs() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert lines[0].startswith("python3 -m venv .venv && . .venv/bin/activate")
    assert lines[1] == "pip install . && budgetguard demo"
    assert lines[2] == 'pip install -e ".[test]" && python -m pytest -q'
