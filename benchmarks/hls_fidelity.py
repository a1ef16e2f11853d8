"""Does our HLS player model play like Chromium running Gradio's page? (BENCHMARKS.md, "HLS fidelity")

    for i in 1 2 3; do bench fidelity --kind gradio-hls --media-format ts --chunk-s 1 --duration 14 --out f/ts$i; done
    python benchmarks/hls_fidelity.py f/ts1 f/ts2 f/ts3

Reads each folder's fidelity.json and prints, per run and metric, Chromium /
our model (its own launch) / the model told of segments by the page's own
playlist loads, the two ratios, then what separates the two runs' timelines
(the page's playlist loads that found nothing new) and what is left on one
timeline (the page's reload lateness and presentation delay), with the
machine's load.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.fidelity_hls import METRICS


def describe(folder: Path) -> list[str]:
    record = json.loads((folder / "fidelity.json").read_text())
    lines = [f"{folder} ({record['media_format']}, chunk {record['chunk_s']:g} s, {record['duration_s']:g} s)"]
    lines.append(f"  {'metric':24}{'Chromium':>10}{'model':>10}{'ratio':>8}{'on page loads':>15}{'ratio':>8}")
    for row, same in zip(record["agreements"], record["agreements_on_page_loads"], strict=True):
        cells = [_cell(row["browser"]), _cell(row["model"]), _cell(row["ratio"], 2)]
        cells += [_cell(same["model"], width=15), _cell(same["ratio"], 2)]
        lines.append(f"  {row['metric']:24}{''.join(cells)}{'' if row['agrees'] else '  differs'}")
    facts, delay, reloads = record["browser_facts"], record["presentation_delay_ms"], record["reload_error_ms"]
    load = record["load_average"]
    lines.append(
        f"  page: first playlist load {_cell(facts['first_load_after_url_ms'], 0, 0)} ms after the URL message; "
        f"{facts['playlist_misses']} of {len(facts['playlist_loads_s'])} playlist loads found nothing new; "
        f"reloads {_cell(reloads['p50'], 0, 0)} ms (max {_cell(reloads['max'], 0, 0)}) off the model's schedule; "
        f"frames {_cell(delay['p50'], 0, 0)} / {_cell(delay['p95'], 0, 0)} ms (p50 / p95) after the model on its "
        f"loads; load average {load['before'][0]:.2f} -> {load['after'][0]:.2f}"
    )
    return lines


def pooled(folders: list[Path]) -> list[str]:
    """Median over runs of each side and of the per-run ratios."""
    records = [json.loads((f / "fidelity.json").read_text()) for f in folders]
    lines = [f"median of {len(records)} runs", f"  {'metric':24}{'Chromium':>10}{'model':>10}{'ratio':>8}"]
    for metric in METRICS:
        values = [[r[side][metric] for r in records if r[side][metric] is not None] for side in ("browser", "model")]
        ratios = [a["ratio"] for r in records for a in r["agreements"] if a["metric"] == metric and a["ratio"]]
        cells = [_cell(float(np.median(v)) if v else None) for v in values]
        lines.append(f"  {metric:24}{''.join(cells)}{_cell(float(np.median(ratios)) if ratios else None, 2)}")
    return lines


def _cell(value: float | None, digits: int = 1, width: int | None = None) -> str:
    width = (10 if digits == 1 else 8) if width is None else width
    return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="folders `bench fidelity --kind gradio-hls` wrote")
    folders = parser.parse_args().folders
    for folder in folders:
        print("\n".join(describe(folder)))
    if len(folders) > 1:
        print("\n".join(pooled(folders)))


if __name__ == "__main__":
    main()
