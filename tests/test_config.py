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
