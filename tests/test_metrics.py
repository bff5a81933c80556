"""Prometheus metrics: series from poll results, the loopback server, /healthz, config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ingestd import config
from ingestd.errors import ConfigError
from ingestd.metrics import Metrics, MetricsServer, start_metrics_server
from ingestd.pipeline import PollResult
from tests.conftest import REPO, SEEDS


class Clock:
    """A hand-driven wall clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_observe_counts_outcomes_entries_and_durations() -> None:
    metrics = Metrics()
    metrics.observe(PollResult(feed="a", outcome="ok", archived=3, revised=1, duration_ms=200))
    metrics.observe(PollResult(feed="a", outcome="not_modified", duration_ms=40))
    metrics.observe(PollResult(feed="b", outcome="failed", error="HTTP 500", duration_ms=2000))
    metrics.observe(PollResult(feed="c", outcome="disabled"))
    assert value(metrics, "ingestd_polls_total", outcome="ok") == 1
    assert value(metrics, "ingestd_polls_total", outcome="not_modified") == 1
    assert value(metrics, "ingestd_polls_total", outcome="failed") == 1
    assert value(metrics, "ingestd_polls_total", outcome="disabled") == 1
    assert value(metrics, "ingestd_entries_archived_total") == 3
    assert value(metrics, "ingestd_entries_revised_total") == 1
    # the disabled feed made no request, so three durations, 2.24 s in all
    assert value(metrics, "ingestd_fetch_duration_seconds_count") == 3
    assert value(metrics, "ingestd_fetch_duration_seconds_sum") == pytest.approx(2.24)
    assert value(metrics, "ingestd_fetch_duration_seconds_bucket", le="0.05") == 1


def test_known_outcomes_exist_at_zero_and_registries_are_private() -> None:
    first, second = Metrics(), Metrics()
    first.observe(PollResult(feed="a", outcome="ok"))
    assert value(first, "ingestd_polls_total", outcome="failed") == 0
    assert value(second, "ingestd_polls_total", outcome="ok") == 0
    assert REGISTRY.get_sample_value("ingestd_polls_total", {"outcome": "ok"}) is None


def test_feed_gauges_follow_configuration_and_results() -> None:
    metrics = Metrics()
    metrics.set_feed_gauges(["a", "b", "c"], failing=["b"])
    assert value(metrics, "ingestd_feeds_total") == 3
    assert value(metrics, "ingestd_feeds_failing") == 1
    metrics.observe(PollResult(feed="a", outcome="failed"))
    assert value(metrics, "ingestd_feeds_failing") == 2
    metrics.observe(PollResult(feed="b", outcome="not_modified"))  # b recovered
    metrics.observe(PollResult(feed="a", outcome="failed"))  # still one feed, not two
    assert value(metrics, "ingestd_feeds_failing") == 1
    metrics.set_feed_gauges(["b", "c"])  # a reload removed the failing feed
    assert value(metrics, "ingestd_feeds_total") == 2
    assert value(metrics, "ingestd_feeds_failing") == 0


def test_unarchived_entries_follow_results_and_configuration() -> None:
    metrics = Metrics()
    metrics.set_feed_gauges(["a", "b", "c"])
    metrics.set_unarchived({"a": (2, 1), "gone": (5, 5)})
    assert value(metrics, "ingestd_entries_unarchived", state="waiting") == 2
    assert value(metrics, "ingestd_entries_unarchived", state="given_up") == 1
    ok = lambda feed, waiting, given_up: PollResult(  # noqa: E731
        feed=feed, outcome="ok", entries_waiting=waiting, entries_given_up=given_up
    )
    metrics.observe(ok("b", 3, 0))
    metrics.observe(ok("a", 1, 1))
    metrics.observe(ok("a", 1, 1))  # the same again: counted once
    metrics.observe(ok("gone", 9, 9))  # not configured: never counted
    metrics.observe(PollResult(feed="c", outcome="failed"))  # did not look at pages
    assert value(metrics, "ingestd_entries_unarchived", state="waiting") == 4
    assert value(metrics, "ingestd_entries_unarchived", state="given_up") == 1
    metrics.observe(ok("b", 0, 2))
    assert value(metrics, "ingestd_entries_unarchived", state="waiting") == 1
    assert value(metrics, "ingestd_entries_unarchived", state="given_up") == 3
    metrics.set_feed_gauges(["b"])  # a reload removed a
    assert value(metrics, "ingestd_entries_unarchived", state="waiting") == 0
    assert value(metrics, "ingestd_entries_unarchived", state="given_up") == 2
    metrics.observe(ok("a", 7, 7))
    assert value(metrics, "ingestd_entries_unarchived", state="waiting") == 0


def test_tick_sets_the_timestamp() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.mark_tick()
    assert value(metrics, "ingestd_last_tick_timestamp") == clock.now
    metrics.mark_tick(at=5.0)
    assert value(metrics, "ingestd_last_tick_timestamp") == 5.0


def test_health_is_starting_then_ok_then_stale() -> None:
    clock = Clock()
    metrics = Metrics(stale_after=15, clock=clock)
    assert metrics.health().ok and metrics.health().detail["status"] == "starting"
    clock.now += 16
    assert not metrics.health().ok and metrics.health().detail["status"] == "no tick yet"
    metrics.mark_tick()
    clock.now += 15
    assert metrics.health().ok
    assert metrics.health().detail == {
        "status": "ok",
        "last_tick_age_seconds": 15.0,
        "stale_after_seconds": 15,
    }
    clock.now += 0.5
    assert not metrics.health().ok and metrics.health().detail["status"] == "stale"


@pytest.fixture
def served() -> Iterator[tuple[Metrics, Clock, MetricsServer]]:
    clock = Clock()
    metrics = Metrics(stale_after=15, clock=clock)
    server = start_metrics_server("127.0.0.1", 0, metrics.registry, metrics.health)
    try:
        yield metrics, clock, server
    finally:
        server.stop()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.mark.timeout(10)
def test_server_serves_metrics_and_health(
    served: tuple[Metrics, Clock, MetricsServer],
) -> None:
    metrics, clock, server = served
    assert server.host == "127.0.0.1" and server.port > 0
    metrics.observe(PollResult(feed="a", outcome="ok", archived=2, duration_ms=100))
    metrics.mark_tick()
    status, kind, body = get(server.url + "/metrics")
    assert status == 200 and kind.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    assert samples[("ingestd_polls_total", (("outcome", "ok"),))] == 1
    assert samples[("ingestd_entries_archived_total", ())] == 2
    assert samples[("ingestd_fetch_duration_seconds_count", ())] == 1
    assert samples[("ingestd_last_tick_timestamp", ())] == clock.now
    assert "python_gc_objects_collected_total" not in body  # not the global registry

    clock.now += 3
    status, kind, body = get(server.url + "/healthz")
    assert status == 200 and kind == "application/json"
    assert json.loads(body) == {
        "status": "ok",
        "last_tick_age_seconds": 3.0,
        "stale_after_seconds": 15,
    }
    clock.now += 60
    status, _, body = get(server.url + "/healthz")
    assert status == 503 and json.loads(body)["status"] == "stale"
    assert get(server.url + "/other")[0] == 404


@pytest.mark.timeout(10)
def test_stop_frees_the_port() -> None:
    metrics = Metrics()
    server = start_metrics_server("127.0.0.1", 0, metrics.registry, metrics.health)
    port = server.port
    server.stop()
    again = start_metrics_server("127.0.0.1", port, metrics.registry, metrics.health)
    again.stop()


def test_a_taken_port_is_a_clear_error() -> None:
    metrics = Metrics()
    server = start_metrics_server("127.0.0.1", 0, metrics.registry, metrics.health)
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            start_metrics_server("127.0.0.1", server.port, metrics.registry, metrics.health)
    finally:
        server.stop()


def load(tmp_path: Path, table: str) -> config.MetricsSettings:
    path = tmp_path / "ingestd.toml"
    path.write_text("# metrics\n[metrics]\n" + table, encoding="utf-8")
    return config.load(path).metrics


def test_metrics_config_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert settings == config.MetricsSettings(
        enabled=False, host="127.0.0.1", port=9464, allow_remote=False, stale_after=60.0
    )
    ticked = tmp_path / "t.toml"
    ticked.write_text('[schedule]\ntick = "1m"\n', encoding="utf-8")
    assert config.load(ticked).metrics.stale_after == 180  # three ticks


def test_metrics_config_accepts_loopback_and_ipv6(tmp_path: Path) -> None:
    assert load(
        tmp_path, 'enabled = true\nlisten = "[::1]:9000"\nstale_after = "2m"'
    ) == config.MetricsSettings(enabled=True, host="::1", port=9000, stale_after=120)
    assert load(tmp_path, 'listen = "localhost:0"').host == "127.0.0.1"
    assert load(tmp_path, 'listen = "0.0.0.0:9464"\nallow_remote = true').host == "0.0.0.0"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('listen = "0.0.0.0:9464"', "line 3: metrics.listen: 0.0.0.0 is not a loopback address"),
        ('listen = "[::]:9464"', "metrics.listen: :: is not a loopback address"),
        ('listen = "192.168.1.5:9464"', "set allow_remote = true"),
        ('listen = "metrics.example:80"', 'line 3: metrics.listen: expected "HOST:PORT"'),
        ('listen = "127.0.0.1"', "metrics.listen: expected"),
        ('listen = "127.0.0.1:70000"', "metrics.listen: expected"),
        ("listen = 9464", "metrics.listen: expected a string"),
        ('enabled = "yes"', "line 3: metrics.enabled: expected true or false"),
        ("allow_remote = 1", "metrics.allow_remote: expected true or false"),
        ("stale_after = 0", "metrics.stale_after: must be longer than zero"),
        ("port = 1", "metrics.port: unknown key"),
    ],
)
def test_metrics_config_errors_name_key_and_line(tmp_path: Path, table: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, table)
    assert problem in str(error.value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(probe: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return False


def polls_ok(url: str) -> float:
    try:
        _, _, body = get(url + "/metrics")
    except OSError:
        return 0.0  # not listening yet
    samples = {
        (s.name, tuple(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    return samples.get(("ingestd_polls_total", (("outcome", "ok"),)), 0.0)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_ingestd_run_serves_metrics_of_its_polls(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    config_file = tmp_path / "ingestd.toml"
    config_file.write_text(
        f"""database = "{database_url}"
[schedule]
tick = "0.2s"
[metrics]
enabled = true
listen = "127.0.0.1:{port}"
[[feeds]]
name = "voa"
url = "file:{SEEDS / "demo" / "voa.xml"}"
sanitize = false
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestd", "run", "--config", str(config_file)],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: polls_ok(url) >= 1), "no successful poll in the metrics"
        status, _, body = get(url + "/metrics")
        assert "ingestd_feeds_total 1.0" in body and "ingestd_feeds_failing 0.0" in body
        assert "ingestd_entries_archived_total 1.0" in body
        assert 'ingestd_start_delay_seconds{quantile="0.99"}' in body
        assert "ingestd_schedule_lateness_seconds" in body and "ingestd_slots 32.0" in body
        status, _, body = get(url + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    _, err = proc.communicate()
    assert "Traceback" not in err
    assert f"metrics at {url}/metrics" in err
    with pytest.raises(OSError):
        get(url + "/healthz")  # the server went with the daemon
