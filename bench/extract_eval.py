"""Extraction quality: ingestd against readability-lxml and trafilatura, on the shared page sets.

    .venv/bin/python -m bench.extract_eval                 # all three sets, all three extractors
    .venv/bin/python -m bench.extract_eval --tsv pages.tsv --worst 15
    .venv/bin/python -m bench.extract_eval --sets chinese --extractors ingestd

Scoring is the one the corpus READMEs use: the output is reduced to its text, lowercased
and cut into tokens (each CJK character one token, other text ``\\w+`` runs); precision
and recall are over the two token multisets, F1 per page, macro mean per set. Every
extractor gets the page as raw bytes: ingestd through its own ``decode_page``,
readability-lxml and trafilatura through theirs. The CleanEval ``<text ...>`` wrapper
of the Chinese set is removed for every extractor alike, as that set's README says.

Times are CPU seconds of this process per page, each extractor timed on the same page
in turn (the order rotates per page), so the ratios hold on a busy machine; each
extractor reads one small page untimed first, so no page pays for loading.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
from lxml import etree

REPO = Path(__file__).resolve().parent.parent
EXTRACTION = "extraction"
SETS = {
    "chinese": "immortal-autumn__Chinese-Web-Content-Extraction-Dataset",
    "wcxb": "Murrough-Foley__web-content-extraction-benchmark",
    "mozilla": "mozilla__readability",
}
# readability.js's tests give every page this address.
MOZILLA_URL = "http://fakehost/test/page.html"
EXTRACTORS = ("readability", "trafilatura", "ingestd")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|\w+")
_CLEANEVAL_OPEN = re.compile(rb"\A\s*<text\b[^>]*>")
_CLEANEVAL_CLOSE = re.compile(rb"</text>\s*\Z")
# Elements whose edges separate words (so `<p>a</p><p>b</p>` is two tokens, not one).
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)


@dataclass(frozen=True)
class Page:
    """One page of a set: its bytes, its address and the text it should give."""

    set: str
    id: str
    raw: bytes
    truth: str
    url: str
    kind: str = "article"


@dataclass
class Scored:
    """One extractor on one page."""

    p: float
    r: float
    f1: float
    seconds: float
    error: str = ""


@dataclass
class PageResult:
    page: Page
    by: dict[str, Scored] = field(default_factory=dict)


# --- scoring ------------------------------------------------------------------------------


def tokens(text: str) -> Counter[str]:
    """The scoring tokens of ``text``: CJK characters one by one, else ``\\w+`` runs."""
    return Counter(_TOKEN.findall(text.lower()))


def prf(predicted: str, truth: str) -> tuple[float, float, float]:
    """Token precision, recall and F1 of ``predicted`` against ``truth`` (multisets)."""
    got, want = tokens(predicted), tokens(truth)
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    p = common / sum(got.values())
    r = common / sum(want.values())
    return p, r, 2 * p * r / (p + r)


def html_text(html: str) -> str:
    """The text of an HTML fragment, with block edges as line breaks."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return ""
    parts: list[str] = []
    _walk_text(root, parts)
    return "".join(parts)


def _walk_text(el: lxml.html.HtmlElement, parts: list[str]) -> None:
    block = isinstance(el.tag, str) and el.tag.lower() in _BLOCKS
    if block:
        parts.append("\n")
    if isinstance(el.tag, str) and el.text:
        parts.append(el.text)
    for child in el:
        _walk_text(child, parts)
        if child.tail:
            parts.append(child.tail)
    if block:
        parts.append("\n")


# --- the page sets ------------------------------------------------------------------------


def load_set(name: str, corpus: Path) -> list[Page]:
    """Every page of the set ``name`` (one of SETS) under ``corpus``."""
    folder = corpus / EXTRACTION / SETS[name]
    if name == "mozilla":
        return [_mozilla_page(d) for d in sorted(folder.iterdir()) if d.is_dir()]
    manifest = _manifest(folder / "MANIFEST.tsv")
    pages = []
    for page_id, row in sorted(manifest.items()):
        raw = (folder / f"{page_id}.html").read_bytes()
        if name == "chinese":
            raw = strip_cleaneval(raw)
        truth = (folder / f"{page_id}.txt").read_text(encoding="utf-8")
        kind = row.get("page_type", "article")
        pages.append(Page(name, page_id, raw, truth, row["url"], kind))
    return pages


def strip_cleaneval(raw: bytes) -> bytes:
    """The page without CleanEval's ``<text ...>`` ... ``</text>`` wrapper (if it has one)."""
    opened = _CLEANEVAL_OPEN.match(raw)
    if not opened:
        return raw
    return _CLEANEVAL_CLOSE.sub(b"", raw[opened.end() :])


def _manifest(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f, delimiter="\t")}


def _mozilla_page(folder: Path) -> Page:
    expected = (folder / "expected.html").read_text(encoding="utf-8")
    return Page(
        "mozilla",
        folder.name,
        (folder / "source.html").read_bytes(),
        html_text(expected),
        MOZILLA_URL,
    )


# --- the extractors -----------------------------------------------------------------------


def readability_html(page: Page) -> str:
    """readability-lxml alone, as a user of the library calls it."""
    from readability import Document

    return str(Document(page.raw).summary(html_partial=True))


def trafilatura_html(page: Page) -> str:
    """trafilatura alone, HTML output, default settings."""
    import trafilatura

    return trafilatura.extract(page.raw, output_format="html") or ""


def ingestd_html(page: Page) -> str:
    """What ``ingestd extract --format feed`` puts under the heading line (the item HTML)."""
    from ingestd.errors import ExtractError
    from ingestd.extract import decode_page, extract_article
    from ingestd.formats import feed
    from ingestd.sanitize import sanitize

    try:
        article = extract_article(decode_page(page.raw, ""), page.url)
    except ExtractError:
        return ""
    content = sanitize(feed.content_from_article(article)).html
    # As the command builds the file: format A joins the content's lines.
    return feed.from_item(article.title, article.url, content, _EPOCH).content


_WARM_UP = Page(
    "warm-up",
    "warm-up",
    b"<html><body><div><p>" + b"A first sentence to read, and a second one. " * 20 + b"</p></div>"
    b"<nav><a href='/'>Home</a></nav></body></html>",
    "",
    "https://example.invalid/",
)
EXTRACTOR_FUNCS: dict[str, Callable[[Page], str]] = {
    "readability": readability_html,
    "trafilatura": trafilatura_html,
    "ingestd": ingestd_html,
}


def run_page(page: Page, names: list[str], turn: int) -> PageResult:
    """Every extractor in ``names`` on ``page``; the order rotates with ``turn``."""
    result = PageResult(page)
    order = names[turn % len(names) :] + names[: turn % len(names)]
    for name in order:
        start = time.process_time()
        error = ""
        try:
            html = EXTRACTOR_FUNCS[name](page)
        except Exception as exc:  # a library that fails on a page scores 0 there
            html, error = "", f"{type(exc).__name__}: {exc}"[:200]
        seconds = time.process_time() - start
        p, r, f1 = prf(html_text(html), page.truth)
        result.by[name] = Scored(p, r, f1, seconds, error)
    return result


def run(pages: list[Page], names: list[str]) -> Iterator[PageResult]:
    """Score each page with each extractor, one page at a time."""
    # Untimed first calls: the libraries load word lists and the like on first use
    # (trafilatura too for ingestd, which asks it for a second opinion).
    for name in {*names, "trafilatura"}:
        EXTRACTOR_FUNCS[name](_WARM_UP)
    for turn, page in enumerate(pages):
        yield run_page(page, names, turn)


# --- reports ------------------------------------------------------------------------------


def groups(results: list[PageResult]) -> dict[str, list[PageResult]]:
    """The rows of the table: each set, and WCXB's articles on their own."""
    out: dict[str, list[PageResult]] = {}
    for res in results:
        out.setdefault(res.page.set, []).append(res)
        if res.page.set == "wcxb" and res.page.kind == "article":
            out.setdefault("wcxb-articles", []).append(res)
    return out


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def table(results: list[PageResult], names: list[str]) -> str:
    """Markdown table: per set, each extractor's mean P / R / F1."""
    head = "| set | pages | " + " | ".join(f"{n} P / R / **F1**" for n in names) + " |"
    lines = [head, "|---|---|" + "---|" * len(names)]
    for group, rows in groups(results).items():
        cells = []
        for n in names:
            p = mean([r.by[n].p for r in rows])
            rc = mean([r.by[n].r for r in rows])
            f = mean([r.by[n].f1 for r in rows])
            cells.append(f"{p:.3f} / {rc:.3f} / **{f:.3f}**")
        lines.append(f"| {group} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing(results: list[PageResult], names: list[str]) -> str:
    """CPU time per extractor, its ratio to readability, and ingestd's slowest pages."""
    lines = []
    base = sum(r.by["readability"].seconds for r in results) if "readability" in names else 0
    for n in names:
        total = sum(r.by[n].seconds for r in results)
        ratio = f", {total / base:.2f}x readability" if base else ""
        lines.append(f"- {n}: {total:.1f} s CPU for {len(results)} pages{ratio}")
    if "readability" in names and "ingestd" in names:
        ratios = sorted(
            (r.by["ingestd"].seconds / max(r.by["readability"].seconds, 1e-4), r) for r in results
        )
        worst_ratio, worst = ratios[-1]
        slowest = max(results, key=lambda r: r.by["ingestd"].seconds)
        lines.append(
            f"- ingestd/readability per page: median {ratios[len(ratios) // 2][0]:.2f}x,"
            f" highest {worst_ratio:.2f}x ({worst.page.set}/{worst.page.id})"
        )
        lines.append(
            f"- slowest page for ingestd: {slowest.page.set}/{slowest.page.id}"
            f" {slowest.by['ingestd'].seconds:.3f} s"
            f" (readability {slowest.by['readability'].seconds:.3f} s)"
        )
    return "\n".join(lines)


def worst(results: list[PageResult], count: int, against: str = "readability") -> str:
    """The pages where ingestd is furthest below ``against``."""
    rows = sorted(results, key=lambda r: r.by["ingestd"].f1 - r.by[against].f1)[:count]
    lines = [f"| page | {against} F1 | ingestd P / R / F1 | delta |", "|---|---|---|---|"]
    for r in rows:
        i, a = r.by["ingestd"], r.by[against]
        lines.append(
            f"| {r.page.set}/{r.page.id} | {a.f1:.3f} | {i.p:.3f} / {i.r:.3f} / {i.f1:.3f}"
            f" | {i.f1 - a.f1:+.3f} |"
        )
    return "\n".join(lines)


def write_tsv(results: list[PageResult], names: list[str], path: Path) -> None:
    """One row per page: each extractor's P, R, F1 and seconds."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        cols = [f"{n}_{c}" for n in names for c in ("p", "r", "f1", "s")]
        out.writerow(["set", "id", "kind", *cols, "errors"])
        for r in results:
            cells = []
            for n in names:
                s = r.by[n]
                cells += [f"{s.p:.3f}", f"{s.r:.3f}", f"{s.f1:.3f}", f"{s.seconds:.4f}"]
            errors = "; ".join(f"{n}: {r.by[n].error}" for n in names if r.by[n].error)
            out.writerow([r.page.set, r.page.id, r.page.kind, *cells, errors])


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=_default_corpus())
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ",".join(SETS))
    parser.add_argument("--extractors", default=",".join(EXTRACTORS))
    parser.add_argument("--tsv", type=Path, help="write the per-page scores here")
    parser.add_argument("--worst", type=int, default=10, help="how many worst pages to list")
    parser.add_argument("--json", type=Path, help="write the per-set means here")
    args = parser.parse_args(argv)
    if not (args.corpus / EXTRACTION).is_dir():
        parser.error(f"no page sets at {args.corpus / EXTRACTION} (give the corpus with --corpus)")
    names = args.extractors.split(",")
    results = []
    for name in args.sets.split(","):
        pages = load_set(name, args.corpus)
        for res in run(pages, names):
            results.append(res)
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(table(results, names))
    print()
    print(timing(results, names))
    if "ingestd" in names:
        for against in [n for n in names if n != "ingestd"]:
            print(f"\nWorst pages for ingestd against {against}:\n")
            print(worst(results, args.worst, against))
    if args.tsv:
        write_tsv(results, names, args.tsv)
    if args.json:
        means = {
            g: {n: mean([r.by[n].f1 for r in rows]) for n in names}
            for g, rows in groups(results).items()
        }
        args.json.write_text(json.dumps(means, indent=1) + "\n", encoding="utf-8")
    return 0


def _default_corpus() -> Path:
    import os

    return Path(os.environ.get("INGESTD_CORPUS", REPO.parent / "shared" / "corpus"))


if __name__ == "__main__":
    sys.exit(main())
