"""The second-opinion rule (ingestd/extract/widen.py) on a page built for it.

trafilatura's text is given by hand here, so each test states what the other
extractor saw and the rule's answer does not depend on trafilatura's release.
"""

from __future__ import annotations

import lxml.html
import pytest
from readability.htmls import build_doc

from ingestd.extract.choose import select
from ingestd.extract.opinion import page_blocks
from ingestd.extract.readable import read
from ingestd.extract.render import article_html
from ingestd.extract.widen import widen

URL = "https://news.example.org/a"
LONG = (
    "The river rose through the night and by morning the lower town was under water, "
    "the mayor said, adding that the shelters had room for everyone who needed one. "
)
OTHER = (
    "Engineers will inspect the old bridge on Monday before traffic is allowed back, "
    "and the rail line will run a reduced timetable until the tracks are cleared. "
)


def _page() -> str:
    # readability takes the first part (more paragraphs); the second part sits in
    # another column, with a nav and a box of links around.
    first = "".join(f"<p>{LONG}</p>" for _ in range(6))
    teaser = '<p><a href="/x">A linked teaser that runs long enough</a></p>'
    return (
        "<html><head><title>t</title></head><body>"
        "<nav><p>Sections: World, Business, Sport and more for every reader</p></nav>"
        f'<div class="wrap"><div class="col"><div class="part-one">{first}</div></div>'
        f'<div class="box">{teaser}</div><div class="col">'
        f'<div class="part-two"><h2>The bridge</h2><p>{OTHER}</p><p>{OTHER}</p></div></div>'
        "</div></body></html>"
    )


def _text(opinion: str) -> str:
    view = read(build_doc(_page())[0])
    chosen = widen(select(view), page_blocks(view.page), lambda: "".join(opinion.split()))
    html = article_html(list(chosen.roots), chosen.leave_out, URL, "t")
    return " ".join(lxml.html.fragment_fromstring(html, create_parent="div").text_content().split())


def test_readability_alone_takes_the_first_part() -> None:
    text = _text("")
    assert "river rose" in text and "old bridge" not in text


def test_more_text_from_the_second_opinion_joins_when_it_holds_readabilitys() -> None:
    text = _text(LONG * 6 + "The bridge" + OTHER * 2)
    assert "river rose" in text and text.count("old bridge") == 2 and "The bridge" in text
    assert "Sections" not in text and "linked teaser" not in text


def test_nav_and_mostly_linked_blocks_never_join() -> None:
    seen = "Sections: World, Business, Sport and more for every reader"
    text = _text(seen + LONG * 6 + "A linked teaser that runs long enough" + OTHER * 2)
    assert "Sections" not in text and "linked teaser" not in text
    assert text.count("old bridge") == 2


def test_a_few_more_characters_are_no_case_for_widening() -> None:
    assert "bridge" not in _text(LONG * 6 + "The bridge")


def test_disagreement_keeps_readability_unless_the_other_is_far_longer() -> None:
    # trafilatura saw only the second part: shorter than readability's, so no change.
    assert "old bridge" not in _text(OTHER * 2)


def test_a_failing_second_opinion_leaves_readabilitys_article(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trafilatura

    from ingestd.extract import extract_article

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("trafilatura failed")

    monkeypatch.setattr(trafilatura, "extract", broken)
    article = extract_article(_page(), URL)
    assert "river rose" in article.html and "old bridge" not in article.html
