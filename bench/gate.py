"""CI gates: `check` (regression against a baseline) and `validate` (claims). Exit codes for CI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.claims import ClaimVerdict, evaluate_claims
from bench.compare import CaseComparison, compare_latencies, load_latencies, measured_latencies
from bench.errors import UsageError
from bench.report.markdown import claims_table, comparison_table
from bench.store import load_run


@dataclass
class GateResult:
    markdown: str
    exit_code: int
    comparisons: list[CaseComparison] | None = None
    verdicts: list[ClaimVerdict] | None = None


def check_run(run_path: Path, baseline_path: Path, threshold: float) -> GateResult:
    """Exit 1 when any case is significantly worse than the baseline by more than `threshold`."""
    run = load_run(run_path)
    if not baseline_path.exists():
        raise UsageError(
            f"{baseline_path}: baseline not found (a run directory or a file from `bench export --format baseline`)"
        )
    comparisons = compare_latencies(load_latencies(baseline_path), measured_latencies(run), threshold)
    worse = [c.case for c in comparisons if c.verdict == "worse"]
    table = comparison_table(comparisons, str(baseline_path), run.run_id, threshold)
    headline = f"**Regression** in {', '.join(f'`{c}`' for c in worse)}" if worse else "No significant regression."
    markdown = f"## streambench check\n\n{headline}\n\n{table}\n"
    publish_step_summary(markdown)
    return GateResult(markdown, 1 if worse else 0, comparisons=comparisons)


def validate_run(run_path: Path) -> GateResult:
    """Exit 1 when any claim fails; inconclusive claims are reported but do not fail."""
    run = load_run(run_path)
    verdicts = evaluate_claims(run)
    if not verdicts:
        markdown = "## streambench validate\n\nThe scenario has no [[claims]].\n"
    else:
        failed = sum(v.status == "fail" for v in verdicts)
        headline = f"{failed} claim(s) failed." if failed else "No claim failed."
        markdown = f"## streambench validate\n\n{headline}\n\n{claims_table(verdicts)}\n"
    publish_step_summary(markdown)
    return GateResult(markdown, 1 if any(v.status == "fail" for v in verdicts) else 0, verdicts=verdicts)


def publish_step_summary(markdown: str) -> None:
    """Append to GitHub Actions' job summary when running there."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
