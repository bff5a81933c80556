"""Bad input to parse gives FormatError with a line number, never a crash or a hang."""

from __future__ import annotations

import time

import pytest

from ingestd.errors import FormatError
from ingestd.formats import feed, parse_any, repost

GOOD_A = "<!--1-->\n[t](https://a/)\n------\n\n<p>x</p>\n"
GOOD_B = "---\ntitle: t\n---\n`s` [l](https://a/)\n\nbody\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "not an archive file"),
        ("\x00\xff\x13binary junk", 1, "not an archive file"),
        (GOOD_A.replace("------", "-----"), 3, "expected '------'"),
        (GOOD_A.replace("<!--1-->", "<!--yesterday-->"), 1, "milliseconds"),
        (GOOD_A.replace("[t](https://a/)", "t https://a/"), 2, "[title](link)"),
        (GOOD_A[:-1], 5, "no final newline"),
        (GOOD_A + "extra\n", 6, "exactly 5 lines"),
        (GOOD_B.replace("title: t", "titel: t"), 2, "title:"),
        (GOOD_B.replace("---\n`", "--\n`"), 3, "expected '---'"),
        (GOOD_B.replace("`s` [l](https://a/)", "s [l](https://a/)"), 4, "`source`"),
        (GOOD_B.replace("\n\nbody", "\nbody"), 5, "empty line"),
        (GOOD_B[:-1], 6, "line break"),
    ],
)
def test_bad_input_names_line_and_expectation(text: str, line: int, words: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_any(text)
    assert info.value.line == line
    assert words in str(info.value)


def test_good_inputs_parse() -> None:
    assert feed.render(feed.parse(GOOD_A)) == GOOD_A
    assert repost.render(repost.parse(GOOD_B)) == GOOD_B


def test_fifty_megabytes_is_fast() -> None:
    huge_a = "<!--1-->\n[t](https://a/)\n------\n\n" + "x" * 50_000_000 + "\nmore\n"
    huge_b = "---\ntitle: " + "t" * 50_000_000  # never closes its front matter
    for text in (huge_a, huge_b):
        started = time.monotonic()
        with pytest.raises(FormatError):
            parse_any(text)
        assert time.monotonic() - started < 5
    big_ok = GOOD_B.replace("body", "line\n" * 8_000_000)
    started = time.monotonic()
    assert repost.render(repost.parse(big_ok)) == big_ok
    assert time.monotonic() - started < 10
