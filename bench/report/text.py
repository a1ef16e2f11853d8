"""Terminal tables of `check`, `compare` and `validate`: cells are rich Text (never markup), no HTML entities."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from bench.claims import ClaimVerdict
from bench.compare import CaseComparison
from bench.report.cells import (
    CLAIM_HEAD,
    COMPARISON_HEAD,
    STREAM_METRIC_HEAD,
    claim_cells,
    comparison_cells,
    stream_metric_rows,
)

STYLE = {"worse": "red", "missing": "red", "not ok": "red", "fail": "red", "better": "green", "pass": "green"}


def comparison_table(comparisons: list[CaseComparison], title: str) -> Table:
    table = Table(*COMPARISON_HEAD, title=title, title_justify="left")
    for comparison in comparisons:
        table.add_row(*map(Text, comparison_cells(comparison)), style=STYLE.get(comparison.verdict))
    return table


def claims_table(verdicts: list[ClaimVerdict]) -> Table:
    table = Table(*CLAIM_HEAD)
    for verdict in verdicts:
        table.add_row(*map(Text, claim_cells(verdict)), style=STYLE.get(verdict.status))
    return table


def stream_metrics_table(cases: list[dict[str, Any]]) -> Table | None:
    """Output-stream, audio and voice measurements beyond per-sample latency; None when no case has any."""
    rows = stream_metric_rows(cases)
    if not rows:
        return None
    table = Table(*STREAM_METRIC_HEAD, title="Output streams, audio and voice turns", title_justify="left")
    for row in rows:
        table.add_row(*map(Text, row))
    return table
