"""bench/soak.py's RSS slopes: the window after warm-up is measured on its own."""

from __future__ import annotations

from typing import Any

from bench.soak import rss_slopes


def _samples(ramp_until: float, end: float) -> list[dict[str, Any]]:
    """A sample every 10 s: RSS grows 1 MB a minute until ``ramp_until``, then stays."""
    samples = []
    for step in range(int(end // 10) + 1):
        t = step * 10.0
        mb = 80 + min(t, ramp_until) / 60
        samples.append({"t": t, "rss_main_mb": mb, "rss_tree_mb": mb + 10})
    return samples


def test_the_last_window_leaves_the_warm_up_out() -> None:
    samples = _samples(ramp_until=300, end=1200)
    whole = rss_slopes(samples, 0)
    last = rss_slopes(samples, samples[-1]["t"] - 600)
    assert whole["main"] > 1  # the warm-up's ramp pulls the whole soak's slope up
    assert last["main"] == 0 and last["tree"] == 0
    assert (last["from_t"], last["to_t"]) == (600, 1200)


def test_a_steady_growth_shows_in_every_window() -> None:
    samples = _samples(ramp_until=1200, end=1200)
    assert rss_slopes(samples, 600)["main"] == 10.0  # 1 MB a minute


def test_too_few_samples_give_no_slope() -> None:
    assert rss_slopes(_samples(ramp_until=0, end=10), 0)["main"] is None
    assert rss_slopes([], 0) == {"main": None, "tree": None, "from_t": None, "to_t": None}
