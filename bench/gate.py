"""CI gates: `check` (regression against a baseline) and `validate` (claims). Exit codes for CI.

A gate never passes on nothing: a baseline case that is missing from the run
(interrupted, crashed before it, removed) or is not `ok` in it fails `check`;
a claim about a case that is not `ok` fails `validate`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.claims import ClaimVerdict, evaluate_claims
from bench.compare import CaseComparison, compare_latencies, load_cases, run_cases
from bench.errors import UsageError
from bench.report.markdown import claims_table, comparison_table
from bench.store import load_run


@dataclass
class GateResult:
    headline: str  # one plain-text sentence: the verdict first
    markdown: str  # for $GITHUB_STEP_SUMMARY or a PR comment
    exit_code: int
    comparisons: list[CaseComparison] = field(default_factory=list)
    verdicts: list[ClaimVerdict] = field(default_factory=list)


def check_run(run_path: Path, baseline_path: Path, threshold: float) -> GateResult:
    """Exit 1 when a baseline case regressed, broke or went missing."""
    run = load_run(run_path)
    if not baseline_path.exists():
        raise UsageError(
            f"{baseline_path}: baseline not found (a run directory or a file from `bench export --format baseline`)"
        )
    comparisons = compare_latencies(load_cases(baseline_path), run_cases(run), threshold)
    failing = [c for c in comparisons if c.gates]
    # a saturated load generator measured itself: whatever the baseline was, that is no latency of the app
    bound = [c["case"] for c in run.summary.get("cases", []) if c.get("client_bound")]
    status = run.summary.get("status", "?")
    headline = "PASS: no case regressed, and every baseline case ran and is ok."
    if failing:
        names = ", ".join(f"{c.case} ({c.verdict})" for c in failing)
        headline = f"FAIL: {len(failing)} case(s) fail the check: {names}."
    if bound:
        clause = f"client-bound (the load generator, not the app, was saturated; use --workers): {', '.join(bound)}."
        headline = f"{headline} Also {clause}" if failing else f"FAIL: {clause}"
    if status not in ("ok", "degraded"):
        headline += f" The run's status is {status}."
    table = comparison_table(comparisons, str(baseline_path), run.run_id, threshold)
    markdown = f"## streambench check\n\n**{headline}**\n\n{table}\n"
    publish_step_summary(markdown)
    return GateResult(headline, markdown, 1 if failing or bound else 0, comparisons=comparisons)


def validate_run(run_path: Path) -> GateResult:
    """Exit 1 when any claim fails; inconclusive claims are reported but do not fail."""
    run = load_run(run_path)
    verdicts = evaluate_claims(run)
    failed = [v for v in verdicts if v.status == "fail"]
    inconclusive = sum(v.status == "inconclusive" for v in verdicts)
    if not verdicts:
        headline = "The scenario has no [[claims]]: nothing to validate."
    elif failed:
        headline = f"FAIL: {len(failed)} of {len(verdicts)} claim(s) failed: " + "; ".join(
            f"{v.claim} on {v.case}" for v in failed
        )
    else:
        headline = f"PASS: {len(verdicts) - inconclusive} claim(s) hold"
        headline += f", {inconclusive} inconclusive (measure longer or repeat)." if inconclusive else "."
    markdown = f"## streambench validate\n\n**{headline}**\n\n" + (f"{claims_table(verdicts)}\n" if verdicts else "")
    publish_step_summary(markdown)
    return GateResult(headline, markdown, 1 if failed else 0, verdicts=verdicts)


def publish_step_summary(markdown: str) -> None:
    """Append to GitHub Actions' job summary when running there."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
