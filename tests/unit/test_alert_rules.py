"""The alert rules: valid, unit-tested by promtool, each with a runbook entry that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no type stubs

from renkei.ops.prometheus import alert_rules, find_promtool

RULES = alert_rules()
TESTS = RULES.with_name("alerts_test.yml")
OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # Missing promtool fails here (PrometheusMissing) rather than skipping: CI has it.
    return subprocess.run(
        [str(find_promtool()), *args], capture_output=True, text=True, check=False, timeout=120
    )


def _alerts(path: Path = RULES) -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def _cases() -> list[dict[str, Any]]:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    return [case for test in tests for case in test["alert_rule_test"]]


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    result = _promtool("test", "rules", str(TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_catch_a_weakened_rule(tmp_path: Path) -> None:
    # The same tests against rules whose worker-down alert no longer waits 30 s: they
    # must fail, or they would not be testing the rules at all.
    rules = RULES.read_text()
    waiting = 'expr: up{job="renkei-hub"} == 0\n        for: 30s'
    weakened = rules.replace(waiting, waiting.replace("30s", "0s"))
    assert weakened != rules
    (tmp_path / "alerts.yml").write_text(weakened)
    (tmp_path / "alerts_test.yml").write_text(TESTS.read_text())
    result = _promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert "RenkeiHubWorkerDown" in result.stdout + result.stderr


@pytest.mark.parametrize("alert", sorted(_alerts()))
def test_every_alert_is_tested_firing_and_not_firing(alert: str) -> None:
    cases = [case for case in _cases() if case["alertname"] == alert]
    assert any(case.get("exp_alerts") for case in cases), f"no case where {alert} fires"
    assert any(not case.get("exp_alerts") for case in cases), f"no case where {alert} stays quiet"


def _anchors(markdown: str) -> set[str]:
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("alert", sorted(_alerts()))
def test_every_alert_has_a_severity_a_summary_and_a_runbook_entry(alert: str) -> None:
    rule = _alerts()[alert]
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"]
    assert annotations["description"]
    page, _, anchor = annotations["runbook"].partition("#")
    assert (page, anchor) == ("docs/operations.md", alert.lower())
    assert anchor in _anchors(OPERATIONS.read_text()), f"docs/operations.md has no ### {alert}"
