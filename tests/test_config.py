"""Configuration: a good file becomes Settings; a bad one names key, line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd import config
from ingestd.errors import ConfigError
from ingestd.types import CRLF, ArchiveFormat

GOOD = """\
database = "sqlite:///state/ingestd.db"
archive_dir = "archive"

[fetch]
concurrency = 8
allow_private = ["127.0.0.1", "10.0.0.0/8", "intranet.example"]

[[feeds]]
name = "voa"
url = "https://www.voachinese.com/api/feed"
interval = "45m"

[[feeds]]
name = "gnews"
url = "file:feeds/gnews.xml"
format = "repost"
source = "喜马拉雅农场"
site = "GNews"
newlines = "crlf"
"""


def test_good_file(tmp_path: Path) -> None:
    settings = config.loads(GOOD, tmp_path / "ingestd.toml")
    assert settings.database == f"sqlite:///{tmp_path}/state/ingestd.db"
    assert settings.archive_dir == tmp_path / "archive"
    assert settings.fetch.concurrency == 8 and settings.fetch.per_host == 4
    assert settings.fetch.user_agent.startswith("ingestd/")
    voa, gnews = settings.feeds
    assert voa.interval_seconds == 45 * 60 and voa.spec.format is ArchiveFormat.FEED
    assert gnews.spec.url == f"file://{tmp_path}/feeds/gnews.xml"
    assert gnews.spec.format is ArchiveFormat.REPOST and gnews.spec.newlines == CRLF
    assert gnews.interval_seconds == settings.default_interval == 1800
    assert settings.feed("gnews") is gnews


def test_feeds_by_name_are_indexed_once_per_settings(tmp_path: Path) -> None:
    # The daemon looks a leased feed up by name on every poll: a map made once, not a
    # walk through every configured feed each time.
    settings = config.loads(GOOD, tmp_path / "ingestd.toml")
    assert settings.by_name is settings.by_name
    assert settings.by_name == {f.spec.name: f for f in settings.feeds}
    assert settings.feed("voa") is settings.feeds[0]
    with pytest.raises(ConfigError, match="no feed named 'nope'"):
        settings.feed("nope")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("concurrency = 8", "concurrency = 0"), "line 5: fetch.concurrency: must be at least 1"),
        (("concurrency = 8", "concurency = 8"), "line 5: fetch.concurency: unknown key"),
        (('interval = "45m"', 'interval = "soon"'), "line 11: feeds[0].interval: expected a dur"),
        (('format = "repost"', 'format = "rss"'), 'line 16: feeds[1].format: expected "feed" or'),
        (('url = "https://www', 'url = "ftp://www'), "line 10: feeds[0].url: expected an http(s)"),
        (('name = "gnews"', 'name = "voa"'), "line 14: feeds[1].name: duplicate feed name"),
        (('name = "voa"', 'name = "../etc"'), "line 9: feeds[0].name: '../etc' is not a safe"),
        (('source = "喜马拉雅农场"\n', ""), 'feeds[1].source: format "repost" needs source'),
        (('"10.0.0.0/8"', '"10.0.0.0/33"'), "line 6: fetch.allow_private: '10.0.0.0/33' is not"),
        (('database = "sqlite', 'database = "nonsense'), "line 1: database: expected sqlite:"),
    ],
)
def test_bad_values_name_key_and_line(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as info:
        config.loads(text, tmp_path / "ingestd.toml")
    assert expected in str(info.value)
    assert str(tmp_path / "ingestd.toml") in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML.*line 2"):
        config.loads('a = 1\nb = "unterminated\n', tmp_path / "x.toml")
    with pytest.raises(ConfigError, match="configuration file not found"):
        config.load(tmp_path / "missing.toml")


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"feeds\[0\]: missing required key 'url'"):
        config.loads('[[feeds]]\nname = "x"\n', tmp_path / "x.toml")


def test_config_location_order(tmp_path: Path) -> None:
    assert config.find_config("a.toml", {"INGESTD_CONFIG": "b.toml"}) == Path("a.toml")
    assert config.find_config(None, {"INGESTD_CONFIG": "b.toml"}) == Path("b.toml")
    assert config.find_config(None, {}) == Path("ingestd.toml")


def test_postgresql_url_gets_the_psycopg_driver(tmp_path: Path) -> None:
    settings = config.loads('database = "postgresql://u@db/ingest"\n', tmp_path / "x.toml")
    assert settings.database == "postgresql+psycopg://u@db/ingest"


def test_schedule_table(tmp_path: Path) -> None:
    text = '[schedule]\ntick = "2s"\nfloor = "5m"\njitter = 0.2\nmax_backoff = "6h"\n'
    schedule = config.loads(text, tmp_path / "x.toml").schedule
    assert (schedule.tick, schedule.floor, schedule.jitter, schedule.max_backoff) == (
        2.0,
        300.0,
        0.2,
        21600.0,
    )
    assert config.loads("", tmp_path / "x.toml").schedule == config.ScheduleSettings()
    with pytest.raises(ConfigError, match="line 2: schedule.jitter: expected a fraction"):
        config.loads("[schedule]\njitter = 3\n", tmp_path / "x.toml")


def test_service_table(tmp_path: Path) -> None:
    assert config.loads('[service]\ngrace = "45s"\n', tmp_path / "x.toml").service.grace == 45.0
    assert config.loads("", tmp_path / "x.toml").service == config.ServiceSettings()
    with pytest.raises(ConfigError, match="line 3: service.grace: expected a duration"):
        config.loads('[service]\n# how long\ngrace = "soon"\n', tmp_path / "x.toml")
    with pytest.raises(ConfigError, match="line 2: service.linger: unknown key"):
        config.loads("[service]\nlinger = 1\n", tmp_path / "x.toml")


# --- issue 16, item 5: the example documents every key; a too-short interval is a warning ---


def _keys_of(section: str, text: str) -> set[str]:
    """Keys written (or commented out) as ``key =`` in one table of the example file."""
    lines, current, found = text.split("\n"), "", set()
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = stripped.strip("[]")
            continue
        if stripped.startswith("[["):
            current = stripped.strip("[]")
            continue
        key = stripped.lstrip("#").strip().split("=", 1)[0].strip()
        if current == section and "=" in stripped and key.isidentifier():
            found.add(key)
    return found


def test_the_example_configuration_documents_every_key() -> None:
    """Item 5: config.example.toml claims every key; [schedule] was missing entirely."""
    text = (Path(__file__).resolve().parent.parent / "config.example.toml").read_text()
    wanted = {
        "fetch": set(config.FetchSettings.__dataclass_fields__),
        "schedule": set(config.ScheduleSettings.__dataclass_fields__),
        "service": set(config.ServiceSettings.__dataclass_fields__),
        "metrics": {"enabled", "listen", "allow_remote", "stale_after"},
    }
    for section, keys in wanted.items():
        assert keys <= _keys_of(section, text), (section, keys - _keys_of(section, text))
    assert {"database", "archive_dir", "interval"} <= _keys_of("", text)
    feed_keys = {
        line.split()[1]
        for line in text.split("\n")
        if line.startswith("# ") and len(line.split()) > 2 and line.split()[1] in config.FEED_KEYS
    }
    assert feed_keys == set(config.FEED_KEYS)
    config.loads(text, Path("/etc/ingestd/ingestd.toml"))  # and it is a valid file


def test_an_interval_below_the_floor_is_a_warning_naming_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 5: interval = "10s" is polled every 60 s (the floor); say so when loading."""
    text = (
        'interval = "30s"\n[schedule]\nfloor = "1m"\n'
        '[[feeds]]\nname = "fast"\nurl = "https://a.example/"\ninterval = "10s"\n'
        '[[feeds]]\nname = "slow"\nurl = "https://b.example/"\ninterval = "2m"\n'
    )
    path = tmp_path / "ingestd.toml"
    settings = config.loads(text, path)
    assert settings.warnings == (
        f"{path}, line 1: interval: 30s is below [schedule] floor (60s): feeds are polled "
        "at most every 60s; lower floor to poll them more often",
        f"{path}, line 7: feeds[0].interval: 10s is below [schedule] floor (60s): feeds are "
        "polled at most every 60s; lower floor to poll them more often",
    )
    path.write_text(
        text.replace('"https://a.example/"', '"file:a.xml"').replace(
            '"https://b.example/"', '"file:b.xml"'
        ),
        encoding="utf-8",
    )
    from ingestd.cli import main

    main(["status", "--config", str(path)])
    err = capsys.readouterr().err
    assert "WARNING" in err and "feeds[0].interval: 10s is below [schedule] floor" in err
