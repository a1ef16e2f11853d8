"""pytest plugin: measure latency inside a project's own tests (the harness is imported lazily).

    def test_my_app_is_fast(streambench):
        result = streambench.run_target("fastrtc-webrtc", transform="flip", duration_s=5)
        assert result.latency_ms.p95 < 500

`streambench.run_scenario(path)` runs a whole scenario file and returns every case.
Runs go to pytest's tmp_path; results are the summary.json contract with attribute access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest


def _view(value: Any) -> Any:
    """summary.json as nested attributes: `case.latency_ms.p95`."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _view(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_view(v) for v in value]
    return value


@dataclass
class ScenarioResult:
    path: Path
    summary: dict[str, Any]

    @property
    def cases(self) -> list[SimpleNamespace]:
        return [_view(c) for c in self.summary["cases"]]

    def case(self, case_id: str) -> SimpleNamespace:
        for case in self.summary["cases"]:
            if case["case"] == case_id:
                return _view(case)
        raise KeyError(f"no case {case_id!r} (have: {', '.join(c['case'] for c in self.summary['cases'])})")


class Streambench:
    """The fixture's object: runs scenarios or single targets, writes runs under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run_scenario(self, path: str | Path) -> ScenarioResult:
        from bench.runner import run_scenario
        from bench.scenario import load_scenario

        scenario, resolved = load_scenario(path)
        result = run_scenario(scenario, resolved, self.root)
        return ScenarioResult(result.path, result.summary)

    def run_target(
        self, kind: str, transform: str = "identity", duration_s: float = 5.0, warmup_s: float = 1.0, **settings: Any
    ) -> SimpleNamespace:
        """One target, one case: returns that case's summary (e.g. `.latency_ms.p95`, `.fps`).

        A case without a single measured frame raises TargetError with the target's error, rather than
        handing the test a `latency_ms` of None.
        """
        from bench.errors import TargetError
        from bench.runner import run_scenario
        from bench.scenario import Scenario, TargetSpec

        scenario = Scenario(
            name=f"pytest-{kind}",
            duration_s=duration_s,
            warmup_s=warmup_s,
            targets=[TargetSpec(kind=kind, transform=transform, **settings)],
        )
        result = run_scenario(scenario, self.root / "scenario.toml", self.root)
        case = result.summary["cases"][0]
        if case["status"] == "failed":
            raise TargetError(f"{case['case']} failed: {case.get('error') or 'no frame came back'} (run {result.path})")
        return _view(case)


@pytest.fixture
def streambench(tmp_path: Path) -> Streambench:
    return Streambench(tmp_path / "runs")
