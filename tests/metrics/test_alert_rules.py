"""The shipped alert rules (deploy/prometheus/alerts.yml): valid for Prometheus, firing when an
SLO is broken and only then (their unit tests, alerts_test.yml), and naming only metrics the
service exposes. `promtool` comes from Debian's `prometheus` package (`make promtool`)."""

from __future__ import annotations

import re
import shutil
import subprocess

import prometheus_client
import yaml

from app.metrics import catalogue
from app.metrics.exposition import _GAUGES
from tests.support.servers import ROOT

RULES = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is not installed: run `make promtool` (Debian package prometheus)"
    done = subprocess.run(
        [tool, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", "alerts.yml")
    promtool("test", "rules", "alerts_test.yml")


def test_the_rules_name_only_metrics_the_service_exposes() -> None:
    exposed = {name for _, count, _, age, _ in _GAUGES for name in (count, age)}
    for value in vars(catalogue).values():
        family = getattr(value, "family", None)
        if isinstance(family, prometheus_client.metrics.MetricWrapperBase):
            exposed.add(family._name + ("_total" if family._type == "counter" else ""))
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    used = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"firstcontact_\w+", rule["expr"])
    }
    assert used, "no metric named in the rules"
    assert used <= exposed, used - exposed
