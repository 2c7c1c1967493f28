"""The README's performance figures are benchmarks/RESULTS.md's: each row of the README's
figures table links the RESULTS.md rows it comes from, and every number in it must be in
those rows (so a new `make bench` that changes a figure fails here until the README says
the new one). The prose quotes the table's figures only."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
RESULTS = (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
LINK = re.compile(r"\[([^\]]+)\]\(benchmarks/RESULTS\.md#([\w-]+)\)")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> dict[str, str]:
    found: dict[str, str] = {}
    for part in RESULTS.split("\n## ")[1:]:
        heading, _, body = part.partition("\n")
        found[anchor(heading)] = body
    return found


def rows(section: str, label: str) -> list[str]:
    """The table rows of `section` whose first cell is `label`."""
    return [
        line
        for line in section.splitlines()
        if line.startswith("|") and line.split("|")[1].strip() == label
    ]


def figures_table() -> list[tuple[str, list[tuple[str, str]]]]:
    table = README.split("| figure | what it measures | RESULTS.md row |", 1)[1]
    entries = []
    for line in table.strip().splitlines()[1:]:
        if not line.startswith("|"):
            break
        figure, _what, where = (cell.strip() for cell in line.strip("|").split("|"))
        entries.append((figure, LINK.findall(where)))
    return entries


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in NUMBER.findall(text)}


def test_the_figures_table_lists_the_cold_start_the_issue_named() -> None:
    """The cold start and the handler's import are there, each with time and memory (their
    numbers come from RESULTS.md: the next test checks them against its rows)."""
    table = README.split("| figure | what it measures | RESULTS.md row |", 1)[1]
    measured = {
        line.split("|")[2].strip().split(",")[0]: line.split("|")[1].strip()
        for line in table.strip().splitlines()[1:]
        if line.startswith("|")
    }
    for what in (
        "FetchAttributes cold start",
        "importing the handler module alone: time and peak RSS",
    ):
        figure = next(f for key, f in measured.items() if key.startswith(what))
        assert re.fullmatch(r"\d+\.\d+ s, \d+ MB", figure), (what, figure)


def test_every_readme_figure_is_in_the_results_rows_it_links() -> None:
    results = sections()
    for figure, links in figures_table():
        assert links, f"{figure}: no RESULTS.md row linked"
        linked = []
        for label, section in links:
            assert section in results, f"{figure}: no RESULTS.md section #{section}"
            found = rows(results[section], label)
            assert found, f"{figure}: no row '{label}' in RESULTS.md #{section}"
            linked += found
        missing = numbers(figure) - numbers(" ".join(linked))
        assert not missing, f"README says {figure}; RESULTS.md's rows {linked} do not: {missing}"


def test_the_prose_quotes_only_figures_of_the_table() -> None:
    table_figures = set().union(*(numbers(figure) for figure, _ in figures_table()))
    intro = README.split("## Start here", 1)[0]
    performance = README.split("## Performance", 1)[1].split("\n## ", 1)[0]
    prose = performance.split("The design choices behind them:", 1)[1]
    measured = re.compile(r"(\d[\d,]*(?:\.\d+)?) ?(?:s|MB|ms|x)\b")
    quoted = {n.replace(",", "") for n in measured.findall(intro + prose)}
    # settings and limits the prose names, not measurements
    settings = {"60", "75", "10", "250", "128", "256", "2", "1"}
    assert quoted - settings <= table_figures | numbers("1,000 2.1-2.5"), quoted - table_figures
