"""What a user reads must hold: links resolve in a fresh clone, help and --version say what the CLI does."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bench.cli import app
from tests.conftest import ROOT, run_cli

DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
COMMANDS = sorted(typer.main.get_command(app).commands)


def relative_links(document: Path) -> list[str]:
    """Link targets outside code blocks that are neither web addresses nor anchors within the page."""
    text = FENCED_BLOCK.sub("", document.read_text())
    targets = (match.group(1) for match in LINK.finditer(text))
    return [t for t in targets if not re.match(r"(https?|mailto):|#", t)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(document: Path) -> None:
    for target in relative_links(document):
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{document.name}: {target} points outside the repository"
        assert path.exists(), f"{document.name}: {target} does not exist"


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"streambench {version('streambench')}\n"


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    missing = [name for name in COMMANDS if not re.search(rf"^[│|] {name} ", result.stdout, re.MULTILINE)]
    assert not missing, result.stdout


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)], ids=lambda c: " ".join(c) or "bench")
def test_help_shows_no_metavar_for_flags(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output
