"""OPML import and export: round trip, folders, duplicates, hostile files, dry run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ingestd import config
from ingestd.cli import main, opml

NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>subscriptions</title></head>
  <body>
    <outline text="News">
      <outline text="World News" title="World News" type="rss"
               xmlUrl="https://news.example/world.xml"/>
      <outline text="Tech">
        <outline text="Kernel" xmlUrl="https://kernel.example/rss"/>
      </outline>
    </outline>
    <outline text="中文 新闻" xmlUrl="https://zh.example/feed"/>
  </body>
</opml>
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def configured(path: Path) -> dict[str, str]:
    return {f.spec.name: f.spec.url for f in config.load(path).feeds}


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write(tmp_path / "ingestd.toml", "# feeds from OPML\n")


def test_round_trip_export_then_import_gives_the_same_feeds(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(
        tmp_path / "source.toml",
        "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n\n'
            for name, url in [
                ("bbc", "https://feeds.example/bbc.xml"),
                ("dw news", "https://rss.example/dw?lang=zh&x=1"),
                ("中文", "https://zh.example/rss"),
            ]
        ),
    )
    code, out, _ = run(capsys, "feeds", "export-opml", "--config", str(source))
    assert code == 0 and out.startswith("<?xml")
    exported = write(tmp_path / "feeds.opml", out)
    code, _, err = run(capsys, "feeds", "import-opml", str(exported), "--config", str(cfg))
    assert code == 0, err
    assert configured(cfg) == configured(source)
    assert cfg.read_text(encoding="utf-8").startswith("# feeds from OPML\n")  # kept


def test_export_writes_opml_2_to_a_file(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(cfg, '[[feeds]]\nname = "a"\nurl = "https://a.example/rss"\n')
    target = tmp_path / "out.opml"
    assert run(capsys, "feeds", "export-opml", "--config", str(cfg), "-o", str(target))[0] == 0
    [outline] = opml.parse(target.read_bytes())
    assert (outline.title, outline.url, outline.name) == ("a", "https://a.example/rss", "a")
    document = target.read_bytes()
    assert b'version="2.0"' in document and b'type="rss"' in document
    assert b'text="a" title="a" xmlUrl="https://a.example/rss"' in document


def test_nested_folders_are_read_and_names_are_safe(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "subs.opml", NESTED)
    code, out, _ = run(
        capsys, "feeds", "import-opml", str(file), "--config", str(cfg), "--interval", "2h"
    )
    assert code == 0
    assert configured(cfg) == {
        "world-news": "https://news.example/world.xml",
        "kernel": "https://kernel.example/rss",
        "中文-新闻": "https://zh.example/feed",
    }
    assert all(f.interval_seconds == 7200 for f in config.load(cfg).feeds)
    assert "added 3 feeds" in out


def test_duplicates_are_skipped_and_names_made_unique(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(cfg, '[[feeds]]\nname = "kernel"\nurl = "https://kernel.example/rss"\n')
    file = write(
        tmp_path / "subs.opml",
        """<opml version="1.0"><body>
<outline text="Kernel" xmlUrl="https://kernel.example/rss"/>
<outline text="Kernel" xmlUrl="https://other.example/kernel"/>
<outline text="KERNEL" xmlUrl="https://third.example/kernel"/>
<outline text="again" xmlUrl="https://other.example/kernel"/>
<outline text="local" xmlUrl="file:///etc/passwd"/>
<outline text="" xmlUrl="https://blog.example.org/feed"/>
</body></opml>""",
    )
    code, out, _ = run(capsys, "feeds", "import-opml", str(file), "--config", str(cfg))
    assert code == 0
    assert configured(cfg) == {
        "kernel": "https://kernel.example/rss",
        "kernel-2": "https://other.example/kernel",
        "kernel-3": "https://third.example/kernel",
        "blog.example.org": "https://blog.example.org/feed",
    }
    assert "already configured as 'kernel'" in out
    assert "listed twice (first on line 3)" in out
    assert "file:///etc/passwd (line 6): not an http(s) URL" in out


def test_feed_name_is_bounded_and_valid() -> None:
    taken: set[str] = set()
    long_title = "A" * 100 + " / .. \x00 <script>"
    first = opml.feed_name(long_title, "https://x.example/", taken)
    second = opml.feed_name(long_title, "https://x.example/", taken)
    assert len(first) <= 64 and len(second) <= 64
    assert second.endswith("-2") and first != second
    assert config.is_safe_feed_name(first) and config.is_safe_feed_name(second)
    assert opml.feed_name("../..", "https://host.example/", taken) == "host.example"
    assert opml.feed_name("", "https://[::1]/", taken) == "1"


def test_dry_run_changes_nothing(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = cfg.read_bytes()
    file = write(tmp_path / "subs.opml", NESTED)
    code, out, _ = run(capsys, "feeds", "import-opml", str(file), "--config", str(cfg), "--dry-run")
    assert code == 0 and "would add 3 feeds" in out and "world-news" in out
    assert cfg.read_bytes() == before
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["ingestd.toml", "subs.opml"]


def test_repost_format_needs_a_source_and_uses_titles_as_site(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "subs.opml", NESTED)
    code, _, err = run(
        capsys, "feeds", "import-opml", str(file), "--config", str(cfg), "--format", "repost"
    )
    assert code == 2 and "--source" in err
    code, _, err = run(
        capsys,
        "feeds",
        "import-opml",
        str(file),
        "--config",
        str(cfg),
        "--format",
        "repost",
        "--source",
        "someone",
    )
    assert code == 0, err
    feed = config.load(cfg).feed("world-news")
    assert feed.spec.format.value == "repost" and feed.spec.site == "World News"


def test_malformed_opml_names_the_line(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = cfg.read_bytes()
    file = write(
        tmp_path / "bad.opml",
        '<opml><body>\n<outline xmlUrl="https://a.example/">\n</body></opml>\n',
    )
    code, _, err = run(capsys, "feeds", "import-opml", str(file), "--config", str(cfg))
    assert code == 2
    assert "bad.opml, line 3: not well-formed XML" in err
    assert "Traceback" not in err
    assert cfg.read_bytes() == before


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"", "line 1: not well-formed XML"),
        (b'<rss version="2.0"><channel/></rss>', "not an OPML file (the root element is <rss>)"),
    ],
)
def test_not_opml(document: bytes, problem: str) -> None:
    with pytest.raises(opml.OpmlError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        opml.parse(document, "x.opml")


def test_missing_file(tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "feeds", "import-opml", str(tmp_path / "none.opml"), "--config", str(cfg)
    )
    assert code == 2 and "none.opml: cannot read" in err


def billion_laughs(where: str) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    attribute = 'text="&lol9;"' if where == "attribute" else 'text="t"'
    content = "&lol9;" if where == "content" else ""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE opml [{"".join(entities)}]>\n'
        f'<opml version="2.0"><body><outline {attribute} '
        f'xmlUrl="https://a.example/">{content}</outline></body></opml>'
    ).encode()


@pytest.mark.parametrize("where", ["attribute", "content"])
@pytest.mark.timeout(10)
def test_billion_laughs_is_refused_without_expansion(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    before = cfg.read_bytes()
    file = tmp_path / "lol.opml"
    file.write_bytes(billion_laughs(where))
    code, out, err = run(capsys, "feeds", "import-opml", str(file), "--config", str(cfg))
    assert code == 2 and "lol.opml" in err
    assert "lollol" not in out + err
    assert cfg.read_bytes() == before


@pytest.mark.parametrize("where", ["attribute", "content"])
def test_external_entity_reads_no_local_file(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    secret = write(tmp_path / "secret.txt", "TOP-SECRET-VALUE")
    use = ('text="&xxe;"', "") if where == "attribute" else ('text="t"', "&xxe;")
    file = write(
        tmp_path / "xxe.opml",
        f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>
<opml version="2.0"><body>
<outline {use[0]} xmlUrl="https://a.example/">{use[1]}</outline>
</body></opml>""",
    )
    code, out, err = run(
        capsys, "feeds", "import-opml", str(file), "--config", str(cfg), "--dry-run"
    )
    assert code == 2 and "xxe.opml" in err
    assert "TOP-SECRET" not in out + err + cfg.read_text(encoding="utf-8")


def test_the_result_is_valid_toml_whatever_the_titles(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(
        tmp_path / "odd.opml",
        """<opml version="2.0"><body>
<outline text='quote " back \\ slash &#x7f; del &#x85; nel' xmlUrl="https://a.example/?q=&quot;x&quot;"/>
</body></opml>""",
    )
    code, _, err = run(
        capsys,
        "feeds",
        "import-opml",
        str(file),
        "--config",
        str(cfg),
        "--format",
        "repost",
        "--source",
        "s",
    )
    assert code == 0, err
    data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    assert data["feeds"][0]["url"] == 'https://a.example/?q="x"'
    assert data["feeds"][0]["site"] == 'quote " back \\ slash del nel'


def test_a_harmless_looking_entity_is_refused_too() -> None:
    document = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY site "Example">]>
<opml version="2.0"><body><outline text="&site;" xmlUrl="https://a.example/"/></body></opml>"""
    with pytest.raises(opml.OpmlError, match="declares XML entities; refused"):
        opml.parse(document, "x.opml")


def test_a_plain_doctype_is_fine() -> None:
    document = (
        b'<!DOCTYPE opml><opml version="1.0"><body><outline text="A" '
        b'xmlUrl="https://a.example/"/></body></opml>'
    )
    assert [o.url for o in opml.parse(document)] == ["https://a.example/"]


def test_export_then_import_into_an_empty_config_keeps_every_feed_and_setting(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, item 8: the repost feed sharing a URL with another feed is not dropped as
    "listed twice", and format, source, label, site, interval, allow_private and the other
    settings come back (ingestd's own settings as namespaced OPML attributes)."""
    source = write(
        tmp_path / "source.toml",
        'interval = "45m"\n'
        '[[feeds]]\nname = "bbc"\nurl = "https://feeds.example/bbc.xml"\ninterval = "1h"\n'
        'fetch_page = true\nimage_proxy = "https://images.example/?url="\nsanitize = false\n\n'
        '[[feeds]]\nname = "bbc repost"\nurl = "https://feeds.example/bbc.xml"\n'
        'format = "repost"\nsource = "喜马拉雅 `农场`"\nlabel = "轉自{site}"\nsite = "BBC"\n'
        'newlines = "crlf-lf-body"\nallow_private = true\n\n'
        '[[feeds]]\nname = "dw"\nurl = "https://rss.example/dw?lang=zh&x=1"\n',
    )
    code, out, _ = run(capsys, "feeds", "export-opml", "--config", str(source))
    exported = write(tmp_path / "feeds.opml", out)
    code, out, err = run(capsys, "feeds", "import-opml", str(exported), "--config", str(cfg))
    assert code == 0, err
    assert "skipped 0" in out
    assert config.load(cfg).feeds == config.load(source).feeds
    # Exported again, the file is the same but for its date.
    again = run(capsys, "feeds", "export-opml", "--config", str(cfg))[1]
    strip = lambda text: [x for x in text.splitlines() if "dateCreated" not in x]  # noqa: E731
    assert strip(again) == strip(exported.read_text(encoding="utf-8"))


def test_bad_ingestd_settings_in_an_outline_skip_that_outline_with_the_reason(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 8: a hand-edited setting that does not validate skips its outline, saying why."""
    file = write(
        tmp_path / "subs.opml",
        f'<opml version="2.0" xmlns:ingestd="{opml.NAMESPACE}"><body>\n'
        '<outline text="a" xmlUrl="https://a.example/rss" ingestd:format="pdf"/>\n'
        '<outline text="b" xmlUrl="https://b.example/rss" ingestd:sanitize="maybe"/>\n'
        '<outline text="c" xmlUrl="https://c.example/rss" ingestd:interval="1h"/>\n'
        "</body></opml>",
    )
    code, out, _ = run(capsys, "feeds", "import-opml", str(file), "--config", str(cfg))
    assert code == 0
    assert configured(cfg) == {"c": "https://c.example/rss"}
    assert config.load(cfg).feeds[0].interval_seconds == 3600
    assert "https://a.example/rss (line 2): ingestd:format: expected" in out
    assert "https://b.example/rss (line 3): ingestd:sanitize: expected true or false" in out
