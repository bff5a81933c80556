"""Generate a loopback feed farm: N feeds of M items, plus article pages, as static files.

Layout under the farm folder (everything a static server can serve as is)::

    feeds/f00000.xml ...        N feeds (RSS 2.0 with content:encoded; every 10th is Atom)
    pipe/p000.xml ...           the full-pipeline feeds (fetch_page = true), 20 items each
    pages/p000/i00.html ...     their article pages, 50-150 KB with page furniture
    big/big.xml                 optional: one feed with many small items (memory check)
    farm.json                   what was generated (counts, sizes, seed)

Feed and item links are relative to a base URL given at generation time
(``http://127.0.0.1:PORT``), so the farm is generated after the server's port is known.
The text is mostly CJK, with some Latin, drawn from a seeded random generator: the same
arguments always produce the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

# Common CJK characters (a frequency-ordered slice of simplified Chinese) and punctuation.
_HAN = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
    "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
    "头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者"
    "向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气"
    "信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活"
    "难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清"
)
_PUNCT = "，，，。。、；：「」"
_LATIN = ("Reuters", "AP", "2024", "COVID-19", "GDP", "iPhone", "NATO", "WHO", "AI", "5G")


@dataclass(frozen=True)
class FarmInfo:
    """What ``generate`` wrote (also saved as ``farm.json``)."""

    base_url: str
    feeds: int
    items: int
    pipeline_feeds: int
    pipeline_items: int
    big_items: int
    feed_bytes: int
    page_bytes: int
    seed: int

    def feed_urls(self) -> list[str]:
        """URLs of the N x M farm feeds."""
        return [f"{self.base_url}/feeds/{feed_file(i)}" for i in range(self.feeds)]

    def pipeline_urls(self) -> list[str]:
        """URLs of the full-pipeline feeds (their items link to pages on the farm)."""
        return [f"{self.base_url}/pipe/{pipe_file(i)}" for i in range(self.pipeline_feeds)]

    def big_url(self) -> str | None:
        """URL of the one big feed, when generated."""
        return f"{self.base_url}/big/big.xml" if self.big_items else None


def feed_file(index: int) -> str:
    """File name of farm feed ``index``."""
    return f"f{index:05d}.xml"


def pipe_file(index: int) -> str:
    """File name of full-pipeline feed ``index``."""
    return f"p{index:03d}.xml"


class _Text:
    """Seeded generator of CJK sentences and paragraphs."""

    def __init__(self, seed: int) -> None:
        self.rand = random.Random(seed)

    def sentence(self, low: int = 12, high: int = 40) -> str:
        rand = self.rand
        chars = rand.choices(_HAN, k=rand.randint(low, high))
        if rand.random() < 0.3:
            chars.insert(rand.randrange(len(chars)), f" {rand.choice(_LATIN)} ")
        for _ in range(len(chars) // 12):
            chars.insert(rand.randrange(1, len(chars)), rand.choice(_PUNCT))
        return "".join(chars) + "。"

    def paragraph(self, sentences: int) -> str:
        return "".join(self.sentence() for _ in range(sentences))

    def title(self) -> str:
        return "".join(self.rand.choices(_HAN, k=self.rand.randint(10, 24)))


def _item_html(text: _Text, base: str, target_bytes: int) -> str:
    """content:encoded HTML of about ``target_bytes`` UTF-8 bytes."""
    rand = text.rand
    parts = [f'<p><img src="{base}/img/{rand.randrange(10**6)}.jpg" alt="{text.title()}"></p>']
    size = len(parts[0])
    while size < target_bytes:
        piece = f"<p>{text.paragraph(rand.randint(2, 4))}</p>"
        if rand.random() < 0.15:
            piece = f"<h3>{text.title()}</h3>" + piece
        if rand.random() < 0.2:
            piece += f'<p><a href="{base}/more/{rand.randrange(10**6)}">{text.title()}</a></p>'
        parts.append(piece)
        size += len(piece.encode("utf-8"))
    return "".join(parts)


def rss_feed(
    text: _Text, base: str, name: str, links: list[str], start: datetime, item_bytes: int
) -> bytes:
    """An RSS 2.0 feed with content:encoded items, newest first."""
    items = []
    for n, link in enumerate(links):
        published = format_datetime(start - timedelta(hours=n), usegmt=True)
        body = _item_html(text, base, item_bytes)
        items.append(
            "<item>"
            f"<title>{escape(text.title())}</title>"
            f"<link>{escape(link)}</link>"
            f'<guid isPermaLink="false">{name}-{n}</guid>'
            f"<pubDate>{published}</pubDate>"
            f"<description>{escape(text.sentence())}</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded>"
            "</item>\n"
        )
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>{escape(text.title())} {name}</title>\n<link>{base}/</link>\n"
        f"<description>{escape(text.sentence())}</description>\n<language>zh-cn</language>\n"
        f"<lastBuildDate>{format_datetime(start, usegmt=True)}</lastBuildDate>\n"
    )
    return (head + "".join(items) + "</channel>\n</rss>\n").encode("utf-8")


def atom_feed(
    text: _Text, base: str, name: str, links: list[str], start: datetime, item_bytes: int
) -> bytes:
    """An Atom 1.0 feed with HTML content, newest first."""
    entries = []
    for n, link in enumerate(links):
        stamp = (start - timedelta(hours=n)).isoformat().replace("+00:00", "Z")
        body = _item_html(text, base, item_bytes)
        entries.append(
            "<entry>"
            f"<title>{escape(text.title())}</title>"
            f'<link rel="alternate" href="{escape(link)}"/>'
            f"<id>urn:bench:{name}:{n}</id><updated>{stamp}</updated><published>{stamp}</published>"
            f"<summary>{escape(text.sentence())}</summary>"
            f'<content type="html">{escape(body)}</content>'
            "</entry>\n"
        )
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"<title>{escape(text.title())} {name}</title>\n"
        f'<link href="{base}/"/><id>urn:bench:{name}</id>\n'
        f"<updated>{start.isoformat().replace('+00:00', 'Z')}</updated>\n"
    )
    return (head + "".join(entries) + "</feed>\n").encode("utf-8")


def article_page(text: _Text, base: str, url: str, title: str, target_bytes: int) -> bytes:
    """An article page of about ``target_bytes`` with nav, sidebar, footer and scripts."""
    rand = text.rand
    nav = "".join(
        f'<li><a href="{base}/section/{k}">{text.title()[:4]}</a></li>'
        for k in range(rand.randint(12, 24))
    )
    side = "".join(
        f'<li><a href="{base}/news/{rand.randrange(10**7)}.html">{text.title()}</a>'
        f'<span class="date">2024-0{rand.randint(1, 9)}-1{rand.randint(0, 9)}</span></li>'
        for _ in range(rand.randint(15, 30))
    )
    script = (
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
        + "var cfg="
        + json.dumps({"k": [rand.randrange(10**9) for _ in range(200)]})
        + ";"
        + "</script>"
    )
    paragraphs = []
    # About half of the page is the article; the rest is furniture and scripts.
    body_target = target_bytes // 2
    size = 0
    while size < body_target:
        para = f"<p>{text.paragraph(rand.randint(3, 6))}</p>"
        if rand.random() < 0.1:
            para = f"<h2>{text.title()}</h2>" + para
        if rand.random() < 0.1:
            para += f"<blockquote><p>{text.sentence()}</p></blockquote>"
        paragraphs.append(para)
        size += len(para.encode("utf-8"))
    lead = (
        f'<figure class="lead"><img src="{base}/img/{rand.randrange(10**7)}.jpg" '
        f'alt="{escape(title)}"><figcaption>{text.sentence()}</figcaption></figure>'
    )
    page = [
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{escape(title)} - 新闻网</title>",
        f'<link rel="canonical" href="{escape(url)}">',
        f'<meta property="og:url" content="{escape(url)}">',
        f'<meta property="og:title" content="{escape(title)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<link rel="stylesheet" href="{base}/static/site.css">',
        "<style>body{font-family:sans-serif}.nav li{display:inline}.side{float:right}</style>",
        script,
        "</head><body>",
        f'<header class="site-header"><div class="logo"><a href="{base}/">新闻网</a></div>',
        f'<nav class="nav"><ul>{nav}</ul></nav>',
        '<form class="search" action="/search"><input name="q"><button>搜索</button></form>',
        "</header>",
        '<div class="container"><main>',
        '<article class="article-content">',
        f'<h1 class="headline">{escape(title)}</h1>',
        f'<div class="byline">记者 {text.title()[:3]} <time datetime="2024-05-01T08:00:00Z">'
        "2024年05月01日 08:00</time></div>",
        lead,
        '<div class="article-body">',
        *paragraphs,
        "</div>",
        '<div class="share"><a href="#">微博</a><a href="#">微信</a><a href="#">Twitter</a></div>',
        "</article>",
        f'<section class="comments"><h3>评论</h3><p>{text.sentence()}</p></section>',
        "</main>",
        f'<aside class="side"><h3>热门</h3><ul>{side}</ul>',
        f'<div class="ad"><script>var ad={rand.randrange(10**6)};</script></div></aside>',
        "</div>",
    ]
    footer_links = "".join(
        f'<a href="{base}/about/{k}">{text.title()[:5]}</a> ' for k in range(rand.randint(10, 20))
    )
    page.append(
        f'<footer class="site-footer"><p>{footer_links}</p><p>© 2024 新闻网 版权所有</p></footer>'
    )
    page.append(script.replace("gtag", "track"))
    html = "".join(page)
    # Pad with more furniture (sidebar lists) up to the target size.
    while len(html.encode("utf-8")) < target_bytes:
        html += f'<div class="more"><ul>{side}</ul></div>'
    return (html + "</body></html>\n").encode("utf-8")


def big_feed(base: str, items: int) -> bytes:
    """One RSS feed with ``items`` small items (a bounded-memory check; ~250 B per item)."""
    start = datetime(2024, 5, 1, tzinfo=UTC)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>big</title><link>{base}/</link><description>big</description>\n"
    )
    rows = []
    for n in range(items):
        published = format_datetime(start - timedelta(minutes=n), usegmt=True)
        rows.append(
            f"<item><title>条目 {n}</title><link>{base}/big/{n}.html</link>"
            f"<guid>big-{n}</guid><pubDate>{published}</pubDate>"
            f"<description>第 {n} 条的摘要。</description></item>\n"
        )
    return (head + "".join(rows) + "</channel></rss>\n").encode("utf-8")


def generate(
    folder: Path,
    base_url: str,
    *,
    feeds: int = 1000,
    items: int = 20,
    pipeline_feeds: int = 25,
    pipeline_items: int = 20,
    big_items: int = 0,
    feed_kb: int = 40,
    seed: int = 7,
) -> FarmInfo:
    """Write the farm under ``folder`` (replacing what a previous run left)."""
    base = base_url.rstrip("/")
    text = _Text(seed)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    # Per item: the share of the feed's target size left after the per-item markup.
    item_bytes = max(200, (feed_kb * 1024) // max(items, 1) - 650)
    feed_total = page_total = 0
    (folder / "feeds").mkdir(parents=True, exist_ok=True)
    for i in range(feeds):
        name = f"f{i:05d}"
        links = [f"{base}/articles/{name}/{n}.html" for n in range(items)]
        build = atom_feed if i % 10 == 9 else rss_feed
        data = build(text, base, name, links, start - timedelta(minutes=i), item_bytes)
        (folder / "feeds" / feed_file(i)).write_bytes(data)
        feed_total += len(data)
    (folder / "pipe").mkdir(exist_ok=True)
    for i in range(pipeline_feeds):
        name = f"p{i:03d}"
        (folder / "pages" / name).mkdir(parents=True, exist_ok=True)
        links = [f"{base}/pages/{name}/i{n:02d}.html" for n in range(pipeline_items)]
        data = rss_feed(text, base, name, links, start, 300)
        (folder / "pipe" / pipe_file(i)).write_bytes(data)
        feed_total += len(data)
        for n, link in enumerate(links):
            page = article_page(text, base, link, text.title(), text.rand.randint(50, 150) * 1024)
            (folder / "pages" / name / f"i{n:02d}.html").write_bytes(page)
            page_total += len(page)
    if big_items:
        (folder / "big").mkdir(exist_ok=True)
        data = big_feed(base, big_items)
        (folder / "big" / "big.xml").write_bytes(data)
    info = FarmInfo(
        base, feeds, items, pipeline_feeds, pipeline_items, big_items, feed_total, page_total, seed
    )
    (folder / "farm.json").write_text(json.dumps(asdict(info), indent=1))
    return info


def load_info(folder: Path) -> FarmInfo:
    """The ``FarmInfo`` a previous ``generate`` saved."""
    return FarmInfo(**json.loads((folder / "farm.json").read_text()))


def main() -> None:
    """``python -m bench.farm FOLDER BASE_URL [--feeds N --items M ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path)
    parser.add_argument("base_url")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--pipeline-feeds", type=int, default=25)
    parser.add_argument("--big-items", type=int, default=0)
    args = parser.parse_args()
    info = generate(
        args.folder,
        args.base_url,
        feeds=args.feeds,
        items=args.items,
        pipeline_feeds=args.pipeline_feeds,
        big_items=args.big_items,
    )
    print(json.dumps(asdict(info)))


if __name__ == "__main__":
    main()
