"""Page bytes -> text: declared charsets tried strictly, then the one that fits best."""

from __future__ import annotations

from ingestd.extract import decode_page

TEXT = "中国数字时代：北京今日天气晴朗，气温二十度。" * 20


def _page(body: str, meta: str = "") -> str:
    return f"<html><head>{meta}<title>t</title></head><body><p>{body}</p></body></html>"


def test_declared_charset_is_used() -> None:
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
    raw = _page(TEXT, meta).encode("gb18030")
    assert TEXT in decode_page(raw, "text/html")


def test_header_wins_over_meta_when_both_fit() -> None:
    raw = _page("Übersicht café", '<meta charset="utf-8">').encode("cp1252")
    assert "Übersicht café" in decode_page(raw, "text/html; charset=ISO-8859-1")


def test_a_lying_declaration_gives_way_to_a_charset_that_fits() -> None:
    raw = _page(TEXT, '<meta charset="utf-8">').encode("gbk")
    assert TEXT in decode_page(raw, "text/html; charset=utf-8")


def test_one_bad_byte_in_an_undeclared_gbk_page_costs_one_character() -> None:
    # No charset anywhere, and one byte sequence that is not GBK: a strict decode
    # fails for every candidate; the one with the fewest replacements wins.
    good = _page(TEXT).encode("gbk")
    cut = good.index("晴".encode("gbk"))
    raw = good[:cut] + b"\xff" + good[cut + 2 :]
    text = decode_page(raw, "")
    assert text.count("\ufffd") == 1
    assert "中国数字时代：北京今日天气" in text and "朗，气温二十度" in text


def test_utf8_with_a_stray_byte_stays_utf8() -> None:
    raw = _page(TEXT).encode("utf-8")
    raw = raw.replace("晴".encode(), b"\xe6\x99")  # a truncated sequence
    text = decode_page(raw, "")
    assert "北京今日天气" in text and text.count("\ufffd") <= 20


def test_byte_order_mark_decides() -> None:
    raw = "\ufeff".encode("utf-16-le") + _page(TEXT).encode("utf-16-le")
    assert TEXT in decode_page(raw, "text/html; charset=gbk")
