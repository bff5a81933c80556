"""Property tests: render then parse gives the document back, for awkward text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestd.formats import feed, repost
from ingestd.formats.text import whatwg_href
from ingestd.types import CRLF, CRLF_LF_BODY, LF, FeedDoc, RepostDoc

AWKWARD = "[]()`*_#<>&;:'\"\\ \t\u3000\ufeff\u00a0\u200b中文標題😀👩‍👩‍👧\r"
chars = st.one_of(
    st.sampled_from(AWKWARD),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
)
one_line = st.text(chars, max_size=60).map(lambda s: s.replace("\n", ""))
segment = st.text(st.sampled_from("abcXYZ09-._~%中文😀 "), min_size=1, max_size=12)
links = st.builds(
    lambda host, parts: whatwg_href(f"https://{host}.example/" + "/".join(parts)),
    st.sampled_from(["www", "cn", "voa", "a-b"]),
    st.lists(segment, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(
    ms=st.one_of(st.none(), st.integers(0, 2**45)),
    title=one_line,
    link=links,
    content=one_line,
)
def test_feed_render_parse_roundtrip(ms: int | None, title: str, link: str, content: str) -> None:
    doc = FeedDoc(pubdate_ms=ms, title=title, link=link, content=content)
    text = feed.render(doc)
    assert feed.parse(text) == doc
    assert text.count("\n") == 5


bodies = st.lists(st.text(chars, max_size=40), max_size=8).map(
    lambda lines: "\n".join(line.replace("\r", "") for line in lines)
)


@settings(max_examples=300, deadline=None)
@given(
    title=one_line.map(lambda s: s.replace("\r", "")),
    source=one_line.map(lambda s: s.replace("\r", "")),
    label=one_line.map(lambda s: s.replace("]", "").replace("\r", "")),
    url=links,
    body=bodies,
    newlines=st.sampled_from([LF, CRLF]),
)
def test_repost_render_parse_roundtrip(
    title: str, source: str, label: str, url: str, body: str, newlines: object
) -> None:
    assert newlines in (LF, CRLF)
    doc = RepostDoc(title, source, label, url, body, newlines)  # type: ignore[arg-type]
    text = repost.render(doc)
    back = repost.parse(text)
    assert (back.title, back.source, back.label, back.url) == (title, source, label, url)
    assert back.body == body
    assert repost.render(back) == text


@settings(max_examples=200, deadline=None)
@given(body=st.text(st.sampled_from("ab \r\n中\u3000"), max_size=60))
def test_repost_any_body_bytes_survive(body: str) -> None:
    """Whatever endings a body mixes, the file's bytes come back exactly."""
    for newlines in (LF, CRLF, CRLF_LF_BODY):
        text = repost.render(RepostDoc("t", "s", "l", "https://a/", body, newlines))
        assert repost.render(repost.parse(text)) == text
