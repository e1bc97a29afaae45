"""Prometheus rules: promtool checks and unit tests, naming and annotation conventions, coverage.

Coverage is enforced: every alert needs a promtool test where it fires and one where it does not,
every recording rule must be evaluated by some promql_expr_test.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "prometheus/rules").glob("*.yml"))
UNIT_TESTS = sorted((REPO / "prometheus/tests").glob("*.test.yml"))
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")  # level:metric:operation


def rules(*files: Path) -> list[dict[str, Any]]:
    return [rule for f in files for group in yaml.safe_load(f.read_text())["groups"] for rule in group["rules"]]


def unit_tests() -> list[dict[str, Any]]:
    return [test for f in UNIT_TESTS for test in yaml.safe_load(f.read_text())["tests"]]


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_exactness",
                                                  REPO / "prometheus/tests/generate_exactness.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def test_generated_exactness_tests_are_fresh() -> None:
    for path, text in load_generator().render_all().items():
        assert path.read_text() == text, f"{path.name} is stale: run prometheus/tests/generate_exactness.py"


def test_recording_rule_names_follow_level_metric_operation() -> None:
    names = {r["record"] for r in rules(*RULES) if "record" in r}
    assert names and not {n for n in names if not RECORD_NAME.match(n)}


def test_every_alert_has_severity_summary_description_and_runbook_anchor() -> None:
    runbook = (REPO / "docs/runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbook, flags=re.MULTILINE)}
    for rule in (r for r in rules(*RULES) if "alert" in r):
        # `none` only for the Watchdog: it is a heartbeat for a dead-man's switch, not a notice.
        allowed = {"none"} if rule["alert"] == "Watchdog" else {"info", "warning", "critical"}
        assert rule["labels"]["severity"] in allowed, rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbook.md#{rule['alert'].lower()}", url
        assert url.split("#")[1] in anchors, f"docs/runbook.md has no section for {rule['alert']}"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test in unit_tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {r["alert"] for r in rules(*RULES) if "alert" in r}
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - silent == {"Watchdog"}, "alerts never tested not firing (the Watchdog always fires)"


def test_every_recording_rule_is_evaluated_by_a_unit_test() -> None:
    exprs = " ".join(case["expr"] for test in unit_tests() for case in test.get("promql_expr_test", []))
    used = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", exprs))
    records = {r["record"] for r in rules(*RULES) if "record" in r}
    assert records - used == set()


@pytest.mark.prometheus
def test_promtool_check_config_and_rules(promtool: str) -> None:
    result = run([promtool, "check", "config", "prometheus/prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    result = run([promtool, "check", "rules", *map(str, RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_unit_tests_pass(promtool: str) -> None:
    # The month test replays 31 days of evaluations; run the files side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda f: (f.name, run([promtool, "test", "rules", f.name], cwd=f.parent)),
                                UNIT_TESTS))
    failed = {name: r.stdout + r.stderr for name, r in results if r.returncode != 0}
    assert not failed, "\n".join(f"{k}:\n{v}" for k, v in failed.items())


@pytest.mark.prometheus
def test_exactness_tests_fail_when_a_new_series_first_increment_is_dropped(
    promtool: str, tmp_path: Path
) -> None:
    """Mutation check: the tests can fail. Without `or <counter>`, new series count from their
    second sample, as increase() does; the daily exactness test must catch it."""
    rules_dir, tests_dir = tmp_path / "rules", tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    original = (REPO / "prometheus/rules/cost.rules.yml").read_text()
    whole = ("          or\n          (\n            series:otel_llm_cost_usd:last\n"
             "            unless on (job, instance) instance:otel_llm_process_unwatched:start_time\n          )\n")
    mutated = original.replace(whole, "", 1)
    assert mutated != original
    (rules_dir / "cost.rules.yml").write_text(mutated)
    for name in ("exactness_daily.generated.test.yml", "budgets.fixture.rules.yml"):
        (tests_dir / name).write_text((REPO / "prometheus/tests" / name).read_text())
    result = run([promtool, "test", "rules", "exactness_daily.generated.test.yml"], cwd=tests_dir)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize("mutation", ["sum the raw series in Prometheus", "switch paths within a run"])
def test_rollup_tests_fail_when_the_rollup_path_loses_its_guarantees(promtool: str, tmp_path: Path, mutation: str) -> None:
    """Mutation check for prometheus/tests/rollups.test.yml (issue 20): summing the raw counter per process in
    the rules (a series missing upstream reads as a reset) or letting a late rollup switch a run from the raw
    path must both over-count there."""
    original = (REPO / "prometheus/rules/cost.rules.yml").read_text()
    if mutation == "sum the raw series in Prometheus":
        old = "(otel_llm_cost_by_scope_USD_total and on (job, instance) instance:otel_llm_cost_rollup_path:info)"
        new = ("(sum without (gen_ai_request_model, server_address, otel_llm_prompt_size) (otel_llm_cost_USD_total)"
               " and on (job, instance) instance:otel_llm_cost_rollup_path:info)")
    else:
        old = ("            unless on (job, instance)\n            (\n"
               "              last_over_time(instance:otel_llm_cost_raw_path:info[1h] offset 1s)\n"
               "              unless on (job, instance) instance:otel_llm_process_restarted:start_time\n"
               "            )\n")
        new = ""
    mutated = original.replace(old, new, 1)
    assert mutated != original
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules/cost.rules.yml").write_text(mutated)
    for name in ("rollups.test.yml", "budgets.fixture.rules.yml"):
        (tmp_path / "tests" / name).write_text((REPO / "prometheus/tests" / name).read_text())
    result = run([promtool, "test", "rules", "rollups.test.yml"], cwd=tmp_path / "tests")
    assert result.returncode != 0 and "got:" in result.stdout + result.stderr  # a wrong figure, not a load error
