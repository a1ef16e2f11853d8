"""The report's answer on runs whose truth is known by construction: a case made 20 ms slower is found 20 ms
slower, identical cases show no significant difference, the best swept value is the one built to be best."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.claims import ClaimVerdict
from bench.headline import Finding, run_findings, shared_texts
from bench.store import RunData

FRAMES = 300
DELTA = re.compile(r"([+-]\d+\.\d) ms \[([+-]\d+\.\d), ([+-]\d+\.\d)\]")


def jittery(base: float, seed: int, n: int = FRAMES) -> np.ndarray:
    """`base` ms plus correlated jitter (AR(1), rho 0.5, sd about 3 ms), as consecutive frames behave."""
    rng = np.random.default_rng(seed)
    noise = np.zeros(n)
    for index in range(1, n):
        noise[index] = 0.5 * noise[index - 1] + rng.normal(0, 2.6)
    return base + noise


def _stats(values: np.ndarray) -> dict[str, Any]:
    p50, p95 = (float(v) for v in np.percentile(values, [50, 95]))
    return {"p50": p50, "p95": p95, "p50_ci": [p50 - 1, p50 + 1], "p95_ci": [p95 - 2, p95 + 2]}


def case(
    name: str,
    latencies: np.ndarray,
    events: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A summary.json case and its samples, from the latencies its frames had (target/transform[/params])."""
    target, transform = name.split("/")[:2]
    summary = {
        "case": name,
        "target": target,
        "transform": transform,
        "params": params or {},
        "status": "ok",
        "n": len(latencies),
        "fps": 30.0,
        "lost_ratio": 0.0,
        "latency_ms": _stats(latencies),
        "event_latency_ms": _stats(events) if events is not None else None,
        "warnings": [],
        "notes": [],
    } | extra
    samples = pd.DataFrame(
        {
            "case": name,
            "target": target,
            "transform": transform,
            "repeat": 0,
            "user": 0,
            "capture_s": np.arange(len(latencies)) / 30,
            "warmup": False,
            "status": "ok",
            "latency_ms": latencies,
            "event_latency_ms": events if events is not None else np.nan,
        }
    )
    return summary, samples


def synthetic_run(*cases: tuple[dict[str, Any], pd.DataFrame], reference: str | None = None, **summary: Any) -> RunData:
    scenario = {"name": "synthetic", "reference": reference, "claims": []}
    return RunData(
        Path("synthetic"),
        {"scenario": "synthetic", "run_id": "synthetic-run", "status": "ok", "cases": [c for c, _ in cases]} | summary,
        {"scenario": scenario, "environment": {}},
        pd.concat([s for _, s in cases], ignore_index=True),
    )


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def test_a_case_made_20_ms_slower_is_found_20_ms_slower():
    run = synthetic_run(case("fast/flip", jittery(50, seed=1)), case("slow/flip", jittery(70, seed=2)))
    (fastest,) = of_kind(run_findings(run), "fastest")
    assert fastest.text.startswith("fast/flip is the fastest flip case")
    delta, low, high = (float(v) for v in DELTA.search(fastest.text.split("slow/flip")[1]).groups())
    assert 18 < delta < 22 and 0 < low < delta < high, fastest.text
    assert "slower" in fastest.text


def test_identical_cases_show_no_significant_difference():
    values = jittery(50, seed=3)
    run = synthetic_run(case("one/flip", values), case("two/flip", values[::-1].copy()))
    (fastest,) = of_kind(run_findings(run), "fastest")
    assert "no significant difference" in fastest.text
    assert "is the fastest" not in fastest.text, "a tie is not announced as a winner"


def test_cases_are_ranked_only_against_the_same_transform():
    run = synthetic_run(
        case("a/flip", jittery(50, seed=4)), case("a/edges", jittery(90, seed=5)), case("b/edges", jittery(60, seed=6))
    )
    texts = [f.text for f in of_kind(run_findings(run), "fastest")]
    assert texts[0].startswith("a/flip: content p50 50"), "a lone transform is reported, not ranked"
    assert texts[1].startswith("b/edges is the fastest edges case")
    delta, low, _ = (float(v) for v in DELTA.search(texts[1].split("a/edges")[1]).groups())
    assert 28 < delta < 32 and low > 0


def test_a_few_lucky_frames_never_win():
    run = synthetic_run(case("lucky/flip", jittery(20, seed=16, n=5)), case("steady/flip", jittery(50, seed=17)))
    (fastest,) = of_kind(run_findings(run), "fastest")
    assert fastest.text.startswith("No flip case is significantly faster than steady/flip: content p50")
    assert "lucky/flip: too few frames to compare" in fastest.text


def test_a_case_that_is_not_ok_is_never_the_fastest():
    degraded = case("quick/flip", jittery(20, seed=7), status="degraded", status_reasons=["only 8 frames measured"])
    run = synthetic_run(degraded, case("steady/flip", jittery(50, seed=8)))
    findings = run_findings(run)
    assert of_kind(findings, "fastest")[0].text.startswith("steady/flip: content p50")
    (status,) = of_kind(findings, "status")
    assert status.text == "quick/flip is degraded: only 8 frames measured" and status.level == "warn"


def test_each_target_is_stated_against_the_reference():
    run = synthetic_run(
        case("app/flip", jittery(60, seed=9)), case("floor/flip", jittery(50, seed=10)), reference="floor"
    )
    findings = run_findings(run)
    (finding,) = of_kind(findings, "reference")
    assert finding.text.startswith("app/flip is +") and "slower than the reference floor/flip" in finding.text
    (fastest,) = of_kind(findings, "fastest")
    assert fastest.text.startswith("floor/flip (the reference) is the fastest flip case")
    assert "app/flip" not in fastest.text, "what the reference finding says is not said twice"
    delta, low, _ = (float(v) for v in DELTA.search(finding.text).groups())
    assert 8 < delta < 12 and low > 0
    assert "ratio 1.2" in finding.text


def test_the_reference_is_matched_on_transform_and_shared_params():
    run = synthetic_run(
        case("app/flip/users=1", jittery(55, seed=11), params={"users": 1}),
        case("app/flip/users=4", jittery(80, seed=12), params={"users": 4}),
        case("floor/flip/users=1", jittery(50, seed=13), params={"users": 1}),
        case("floor/flip/users=4", jittery(51, seed=14), params={"users": 4}),
        case("floor/edges/users=4", jittery(10, seed=15), params={"users": 4}),
        reference="floor",
    )
    (finding,) = of_kind(run_findings(run), "reference")
    assert finding.text == "app against the reference floor:"
    assert "than the reference floor/flip/users=1" in finding.details[0]
    assert "than the reference floor/flip/users=4" in finding.details[1]


def test_a_case_with_several_possible_references_is_not_compared_silently():
    run = synthetic_run(
        case("app/flip", jittery(60, seed=16)),
        case("floor/flip/delay_ms=0", jittery(50, seed=17), params={"delay_ms": 0}),
        case("floor/flip/delay_ms=50", jittery(100, seed=18), params={"delay_ms": 50}),
        reference="floor",
    )
    (finding,) = of_kind(run_findings(run, []), "reference")
    assert finding.text.startswith("app/flip: not compared with the reference: several cases to compare with")


def test_the_best_swept_value_is_the_one_with_the_lowest_event_to_display_p50():
    cases = []
    for seed, every in enumerate((0.5, 0.1, 1.0)):
        content = jittery(60 + 5 * seed, seed=20 + seed)
        waiting = jittery(every * 500, seed=30 + seed)  # waiting for the next capture tick: about half the interval
        cases.append(
            case(
                f"gradio/flip/stream_every={every}", content, content + waiting, {"stream_every": every}, fps=1 / every
            )
        )
    (sweep,) = of_kind(run_findings(synthetic_run(*cases)), "sweep")
    assert sweep.text.startswith("gradio: stream_every 0.1 gives the lowest event-to-display p50"), sweep.text
    assert "10.0 fps" in sweep.text
    low, high = (int(v) for v in re.search(r"content p50 is (\d+)-(\d+) ms", sweep.text).groups())
    assert abs(low - 60) <= 2 and abs(high - 70) <= 2, "content p50 is stated across the swept values"
    assert "next best: stream_every 0.5, +" in sweep.text and "slower" in sweep.text


def test_a_degraded_swept_value_is_shown_but_does_not_win():
    steady, lucky = jittery(60, seed=35), jittery(40, seed=36, n=6)
    run = synthetic_run(
        case("gradio/flip/stream_every=0.1", steady, steady + 50, {"stream_every": 0.1}),
        case("gradio/flip/stream_every=0.5", lucky, lucky, {"stream_every": 0.5}, status="degraded"),
    )
    (sweep,) = of_kind(run_findings(run, []), "sweep")
    assert sweep.text.startswith("gradio: stream_every 0.1 gives the lowest event-to-display p50")
    assert "next best: stream_every 0.5 (degraded), too few frames to compare" in sweep.text


def test_without_event_latency_the_sweep_ranks_content_latency():
    cases = [
        case(f"echo/delay/delay_ms={delay}", jittery(50 + delay, seed=40 + delay), params={"delay_ms": delay})
        for delay in (200, 0, 50)
    ]
    (sweep,) = of_kind(run_findings(synthetic_run(*cases)), "sweep")
    assert sweep.text.startswith("echo: delay_ms 0 gives the lowest content p50"), sweep.text


def test_claims_are_counted_and_failing_ones_named():
    verdicts = [
        ClaimVerdict("app latency_ms.p95 < 500", "app/flip", "pass", 90.0, (80.0, 100.0), 500),
        ClaimVerdict("app fps > 25", "app/flip", "fail", 12.0, None, 25),
        ClaimVerdict("app latency_ms.p50 < 60", "app/flip", "inconclusive", 59.0, (55.0, 63.0), 60),
    ]
    run = synthetic_run(case("app/flip", jittery(50, seed=50)))
    (claims,) = of_kind(run_findings(run, verdicts), "claims")
    assert claims.text.startswith("Claims: 1 pass, 1 fail, 1 inconclusive.")
    assert "app fps > 25 on app/flip" in claims.text and claims.level == "fail"
    assert "app latency_ms.p50 < 60" in claims.details[0]


def test_failures_and_warnings_are_said_once_in_plain_words():
    backlog = "backlog: latency grows 30 ms per s"
    run = synthetic_run(
        case("a/flip", jittery(50, seed=60), warnings=[backlog]),
        case("b/flip", jittery(50, seed=61), warnings=[backlog]),
        case("c/flip", jittery(50, seed=62), status="degraded", status_reasons=[backlog], warnings=[backlog]),
        case("d/flip", jittery(50, seed=63), status="failed", error="connection refused", latency_ms=None),
        status="interrupted",
    )
    findings = run_findings(run, [])
    status = [f.text for f in of_kind(findings, "status")]
    assert status[0].startswith("This run was interrupted")
    assert status[1:] == ["c/flip is degraded: " + backlog, "d/flip failed: connection refused"]
    assert [f.text for f in of_kind(findings, "warning")] == [f"a/flip, b/flip: {backlog}"]


def test_a_note_on_every_case_is_said_once_for_all():
    cases = [
        {"case": "a", "notes": ["aiortc holds a frame", "a only"]},
        {"case": "b", "notes": ["aiortc holds a frame"]},
    ]
    shared, single = shared_texts(cases, "notes")
    assert (shared.text, shared.cases, shared.every_case) == ("aiortc holds a frame", ("a", "b"), True)
    assert (single.cases, single.every_case) == (("a",), False)


@pytest.mark.parametrize("reference", [None, "missing"])
def test_a_run_without_a_usable_reference_says_so_or_nothing(reference: str | None):
    findings = run_findings(synthetic_run(case("app/flip", jittery(50, seed=70)), reference=reference), [])
    expected = (
        [] if reference is None else ["The reference target missing has no ok case: nothing is stated against it."]
    )
    assert [f.text for f in of_kind(findings, "reference")] == expected
