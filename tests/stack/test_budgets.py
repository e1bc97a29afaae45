"""otel_llm.budgets: validation names the file and key; the committed rules are a fresh render."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from otel_llm.cli import budget_rules as budgets

REPO = Path(__file__).resolve().parents[2]


def test_committed_budget_rules_are_a_fresh_render() -> None:
    fresh = budgets.render_rules(budgets.load(REPO / "prometheus/budgets.yaml"), "budgets.yaml")
    assert (REPO / "prometheus/rules/budgets.generated.yml").read_text() == fresh


def test_test_fixture_budget_rules_are_a_fresh_render() -> None:
    src = REPO / "prometheus/tests/budgets.fixture.yaml"
    fresh = budgets.render_rules(budgets.load(src), src.name)
    assert (REPO / "prometheus/tests/budgets.fixture.rules.yml").read_text() == fresh


def test_case_figures_render_to_budget_series() -> None:
    text = budgets.render_rules(budgets.parse({"global": {"daily": 50, "monthly": 1000}}, "b.yaml"), "b.yaml")
    rules = yaml.safe_load(text)["groups"][0]["rules"]
    assert rules == [
        {"record": "otel_llm:budget_usd:daily", "expr": "vector(50)", "labels": {"scope": "global"}},
        {"record": "otel_llm:budget_usd:monthly", "expr": "vector(1000)", "labels": {"scope": "global"}},
    ]


def test_scoped_budgets_carry_the_label_of_their_spend_series() -> None:
    parsed = budgets.parse({"users": {"alice": {"daily": 2.5}}, "teams": {"support": {"monthly": 600}},
                            "api_keys": {"0123456789ab": {"daily": 20}}}, "b.yaml")
    rules = yaml.safe_load(budgets.render_rules(parsed, "b.yaml"))["groups"][0]["rules"]
    assert {(r["record"], r["expr"], tuple(sorted(r["labels"].items()))) for r in rules} == {
        ("otel_llm:budget_usd:daily", "vector(2.5)", (("scope", "user"), ("user_id", "alice"))),
        ("otel_llm:budget_usd:monthly", "vector(600)", (("otel_llm_team", "support"), ("scope", "team"))),
        ("otel_llm:budget_usd:daily", "vector(20)",
         (("otel_llm_api_key_fingerprint", "0123456789ab"), ("scope", "api_key"))),
    }


@pytest.mark.parametrize(("data", "message"), [
    ({"global": {"daily": "fifty"}}, "b.yaml: global.daily: must be a number of USD, got 'fifty'"),
    ({"global": {"daily": True}}, "b.yaml: global.daily: must be a number of USD, got True"),
    ({"global": {"daily": -1}}, "b.yaml: global.daily: must be a positive finite number of USD, got -1"),
    ({"global": {"daily": float("inf")}}, "b.yaml: global.daily: must be a positive finite number"),
    ({"global": {"weekly": 5}}, "b.yaml: global.weekly: unknown period (allowed: daily, monthly)"),
    ({"users": {"alice": {"daily": 0}}}, "b.yaml: users.alice.daily: must be a positive finite number"),
    ({"users": {"alice": {}}}, "b.yaml: users.alice: names no budget"),
    ({"users": ["alice"]}, "b.yaml: users: must be a mapping, got list"),
    ({"api_keys": {"sk-live-123": {"daily": 5}}}, "b.yaml: api_keys.sk-live-123: must be a 12-hex-digit"),
    ({"tenants": {}}, "b.yaml: tenants: unknown section"),
    ([1, 2], "b.yaml: (top level): must be a mapping, got list"),
])
def test_malformed_budgets_name_the_file_and_key(data: object, message: str) -> None:
    with pytest.raises(budgets.BudgetError) as caught:
        budgets.parse(data, "b.yaml")
    assert str(caught.value).startswith(message)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("global: {daily: [\n")
    with pytest.raises(budgets.BudgetError, match=f"^{path}: not valid YAML"):
        budgets.load(path)


def test_main_renders_checks_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "budgets.yaml", tmp_path / "rules.yml"
    src.write_text("global: {daily: 50}\n")
    assert budgets.main(["--budgets", str(src), "--out", str(out), "--check"]) == 1  # not rendered yet
    assert budgets.main(["--budgets", str(src), "--out", str(out)]) == 0
    assert budgets.main(["--budgets", str(src), "--out", str(out), "--check"]) == 0
    src.write_text("global: {daily: 60}\n")
    assert budgets.main(["--budgets", str(src), "--out", str(out), "--check"]) == 1  # stale now
    src.write_text("global: {daily: nope}\n")
    assert budgets.main(["--budgets", str(src), "--out", str(out)]) == 2
    assert f"{src}: global.daily: must be a number of USD" in capsys.readouterr().err
