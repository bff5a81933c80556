"""Run the loopback benchmark: ingestd vs reader vs the floors, alternating, in one run.

    python -m bench.runner [--feeds 1000 --items 20 --rounds 2 ...]

(``bench/run`` installs nginx and reader first, then runs this.) Every contender is a
subprocess; for each the runner measures wall seconds, CPU seconds (user + system of
the process and every descendant it reaped, from ``RUSAGE_CHILDREN`` deltas), the peak
RSS of the largest single process (``wait4``), and the peak of the summed RSS of the
whole process tree (``/proc`` sampled every 50 ms: ingestd's parse pool included).

Cases, each round alternating who goes first:

- ingestd ``fetch`` cold (empty database and archive), then warm (all 304);
- reader ``update_feeds(workers=N)`` cold, then warm; the first round tries every
  worker count of ``--reader-workers`` and the later rounds use the best per phase;
- floor: feedparser over the same feed bytes from memory, one core;
- full pipeline: ingestd over the pipeline feeds with ``fetch_page = true`` (page
  fetch, extraction, render, write), against readability-lxml + HTML -> markdown
  over the same pages in one process (and ingestd's own extraction, informative).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import farm as farmgen
from bench.serve import Nginx, PythonServer, StaticServer, nginx_binary

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
READER_PYTHON = BENCH / ".venv-reader" / "bin" / "python"
PY_SPY = BENCH / ".venv-tools" / "bin" / "py-spy"
PAGE_SIZE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- measuring one subprocess -------------------------------------------------------


@dataclass
class Measured:
    """One subprocess run: what it printed and what it cost."""

    label: str
    wall: float
    cpu: float
    max_rss_mb: float  # the largest single process (wait4 ru_maxrss)
    tree_rss_mb: float  # peak of the summed RSS of the process tree (sampled)
    returncode: int
    output: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""
    # CPU seconds the rest of the machine used meanwhile (other people's work on a shared
    # machine): busy time from /proc/stat less this contender's and the runner's.
    others_cpu: float = 0.0


def _become_subreaper() -> None:
    # Orphaned grandchildren (a pool's fork server) are reparented to us, so their CPU
    # time reaches RUSAGE_CHILDREN when we reap them.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    tree = _children_of()
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, ()))
    return found


def rss_kb(pids: Sequence[int]) -> int:
    """Resident memory of these processes together, in kB (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE_KB
        except (OSError, IndexError, ValueError):
            continue
    return total


def _reap_orphans(keep: set[int]) -> None:
    # Zombies reparented to us (see _become_subreaper); never touch the server's pid.
    tree = _children_of().get(os.getpid(), [])
    for pid in tree:
        if pid in keep:
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state == b"Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _wait_for_orphans(keep: set[int], timeout: float = 10.0) -> None:
    """Reap what the contender left behind (a pool's fork server, workers, resource
    tracker exit a moment after it), so their CPU time counts for this run."""
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.02)
        _reap_orphans(keep)
        alive = [pid for pid in _children_of().get(os.getpid(), []) if pid not in keep]
        if not alive or time.monotonic() > deadline:
            return


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user time.
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def measure(
    label: str,
    cmd: Sequence[str],
    *,
    keep: set[int] | None = None,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run ``cmd``, wait for it (and its orphans), and return its costs and JSON output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    busy_before = machine_busy()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=env
        )
        peak = 0
        done = threading.Event()

        def sample() -> None:
            # statm of the known tree every 50 ms; the tree itself (a /proc scan) every 0.5 s.
            nonlocal peak
            pids: list[int] = []
            for tick in itertools.count():
                if done.is_set():
                    return
                if tick % 10 == 0:
                    pids = descendants(process.pid)
                peak = max(peak, rss_kb(pids))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        _wait_for_orphans(keep or set())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        busy = machine_busy() - busy_before
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    own = (self_after.ru_utime - self_before.ru_utime) + (
        self_after.ru_stime - self_before.ru_stime
    )
    parsed: dict[str, Any] = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            break
    return Measured(
        label,
        wall,
        cpu,
        usage.ru_maxrss / 1024,
        peak / 1024,
        process.returncode,
        parsed,
        stderr[-1500:],
        max(0.0, busy - cpu - own),
    )


# --- contenders ----------------------------------------------------------------------


def ingestd_config(
    path: Path,
    urls: Sequence[str],
    *,
    workdir: Path,
    concurrency: int,
    per_host: int,
    fetch_page: bool = False,
) -> Path:
    """Write an ingestd configuration over the farm's feeds (loopback allowed)."""
    lines = [
        "# Generated by bench/runner.py",
        f'database = "sqlite:///{workdir / "ingestd.db"}"',
        f'archive_dir = "{workdir / "archive"}"',
        'interval = "30m"',
        "",
        "[fetch]",
        f"concurrency = {concurrency}",
        "# One host serves the whole farm: per_host (default 4) would throttle it.",
        f"per_host = {per_host}",
        'allow_private = ["127.0.0.1"]',
    ]
    for url in urls:
        name = url.rsplit("/", 1)[-1].removesuffix(".xml")
        lines += ["", "[[feeds]]", f'name = "{name}"', f'url = "{url}"', 'format = "feed"']
        if fetch_page:
            lines.append("fetch_page = true")
    path.write_text("\n".join(lines) + "\n")
    return path


def fresh(folder: Path) -> Path:
    """An empty folder (for the server's own files)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


_RUN_FOLDERS = itertools.count(1)


def new_run_folder(parent: Path, name: str) -> Path:
    """A folder never used before, for one cold run's database and archive.

    Nothing is deleted between runs (``Bench.run`` removes them all at the end):
    ext4 makes creating files in the minutes after deleting many files several times
    slower (its inode allocator skips recently freed inodes; 20,000 small files took
    1.2 s on a quiet disk and 8-11 s right after deleting 20,000 others), so deleting
    the previous cold run's archive would measure the deletion, not the contender.
    """
    folder = parent / f"{name}-{os.getpid()}-{next(_RUN_FOLDERS)}"
    folder.mkdir(parents=True)
    return folder


def best_per_phase(trials: dict[str, dict[int, float]]) -> dict[str, int]:
    """For each phase, the setting (worker count, concurrency) with the shortest wall time."""
    return {phase: min(times, key=times.__getitem__) for phase, times in trials.items()}


def compile_ingestd(say: Any) -> None:
    """Byte-compile ingestd's own modules, as installing a package does.

    ingestd runs from an editable install, whose modules are compiled on first import
    and cached in ``__pycache__`` unless ``PYTHONDONTWRITEBYTECODE`` is set (it is on
    some machines): then every run would compile ingestd afresh (about 0.35 s of
    start-up here) while reader, installed from a wheel, starts from bytecode that pip
    compiled. Compiling ahead gives both the start a real installation has.
    """
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "ingestd")],
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )
    say(f"ingestd byte-compiled in {time.perf_counter() - started:.1f} s")


def ingestd_cmd(config: Path) -> list[str]:
    """The ``ingestd fetch --json`` command line in ingestd's own venv."""
    return [sys.executable, "-m", "ingestd", "fetch", "--config", str(config), "--json"]


def reader_cmd(db: Path, urls: Path, workers: int) -> list[str]:
    """reader's one update, in its separate venv."""
    return [
        str(READER_PYTHON),
        str(BENCH / "reader_run.py"),
        "--db",
        str(db),
        "--urls",
        str(urls),
        "--workers",
        str(workers),
    ]


def floor_cmd(mode: str, farm: Path, *extra: str) -> list[str]:
    """One floor, in ingestd's venv (same feedparser, readability, lxml and httpx)."""
    return [sys.executable, "-m", "bench.floor", mode, str(farm), *extra]


# --- the run --------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: the median of a case's samples."""

    case: str
    samples: list[Measured]
    feeds: int
    entries: int
    note: str = ""

    @property
    def seconds(self) -> float:
        return statistics.median(m.wall for m in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(m.cpu for m in self.samples)

    @property
    def max_rss(self) -> float:
        return max(m.max_rss_mb for m in self.samples)

    @property
    def tree_rss(self) -> float:
        return max(m.tree_rss_mb for m in self.samples)

    def failures(self) -> str:
        """Failed feeds per sample (ingestd's "failed", reader's feeds with an error)."""
        counts = []
        for m in self.samples:
            value = m.output.get("failed", m.output.get("errors", ""))
            counts.append(str(value) if isinstance(value, int) else "")
        return "/".join(counts) if any(counts) else ""

    def others(self) -> str:
        """CPU seconds other processes on the machine used during each sample."""
        return "/".join(f"{m.others_cpu:.0f}" for m in self.samples)

    def spread(self) -> str:
        walls = sorted(m.wall for m in self.samples)
        return f"{walls[0]:.2f}-{walls[-1]:.2f}" if len(walls) > 1 else ""


class Bench:
    """Everything one benchmark run holds: folders, server, options and samples."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.dir).resolve()
        self.farm = self.out / "farm"
        self.work = self.out / "work"
        self.log: list[str] = []
        self.samples: dict[str, list[Measured]] = {}
        self.reader_workers: dict[str, int] = {}
        self.reader_trials: dict[str, dict[int, float]] = {"cold": {}, "warm": {}}
        self.concurrency: dict[str, int] = {}
        self.concurrency_trials: dict[str, dict[int, float]] = {"cold": {}, "warm": {}}
        self.server: StaticServer | None = None
        self.server_pid: set[int] = set()
        self.info: farmgen.FarmInfo | None = None
        self.has_reader = READER_PYTHON.exists() and "reader" in args.contenders

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)
        self.log.append(text)

    def add(self, key: str, measured: Measured) -> Measured:
        self.samples.setdefault(key, []).append(measured)
        ok = "ok" if measured.returncode == 0 else f"exit {measured.returncode}"
        self.say(
            f"  {measured.label:<34} {measured.wall:8.2f} s  cpu {measured.cpu:7.2f} s  "
            f"rss {measured.max_rss_mb:6.0f} MB (tree {measured.tree_rss_mb:6.0f} MB)"
            f"  others {measured.others_cpu:6.1f} s  {ok}  "
            f"{json.dumps(_brief(measured.output))}"
        )
        if measured.returncode not in (0, 1) or not measured.output:
            self.say(f"    stderr: {measured.stderr_tail.strip()[-800:]}")
        return measured

    # --- server and farm ---

    def start_server(self) -> None:
        kind = self.args.server
        if kind == "auto":
            kind = "nginx" if nginx_binary() else "python"
        self.out.mkdir(parents=True, exist_ok=True)
        server: StaticServer
        if kind == "nginx":
            nginx = Nginx(self.farm, fresh(self.out / "nginx"))
            self.nginx_version = nginx.version()
            server = nginx
        else:
            self.farm.mkdir(parents=True, exist_ok=True)
            server = PythonServer(self.farm)
            self.nginx_version = ""
        self.server = server
        self.say(f"server: {server.name} at {server.base_url}")

    def generate(self) -> farmgen.FarmInfo:
        assert self.server is not None
        shutil.rmtree(self.farm, ignore_errors=True)
        self.farm.mkdir(parents=True)
        started = time.perf_counter()
        pipeline_feeds = 0 if "pipeline" not in self.args.contenders else self.args.pipeline_feeds
        info = farmgen.generate(
            self.farm,
            self.server.base_url,
            feeds=self.args.feeds,
            items=self.args.items,
            pipeline_feeds=pipeline_feeds,
            big_items=self.args.big_items,
        )
        self.say(
            f"farm: {info.feeds} feeds x {info.items} items, {pipeline_feeds} pipeline feeds"
            f" x {info.pipeline_items}; feeds {info.feed_bytes / 1e6:.1f} MB, pages "
            f"{info.page_bytes / 1e6:.1f} MB; generated in "
            f"{time.perf_counter() - started:.1f} s"
        )
        self.info = info
        return info

    # --- cases ---

    def run_ingestd(self, rnd: int) -> None:
        assert self.info is not None
        # Round 1 tries every concurrency (as reader's worker counts are tried); the
        # later rounds use the best of each phase.
        counts = self.args.concurrency if rnd == 0 else sorted(set(self.concurrency.values()))
        for conc in counts:
            self.ingestd_cycle(rnd, conc)
        if rnd == 0:
            self.concurrency = best_per_phase(self.concurrency_trials)
            self.say(
                f"  ingestd best concurrency: cold {self.concurrency['cold']}, "
                f"warm {self.concurrency['warm']}"
            )

    def ingestd_cycle(self, rnd: int, conc: int) -> None:
        """One cold and one warm ``ingestd fetch`` at concurrency ``conc``."""
        assert self.info is not None
        work = new_run_folder(self.work, "ingestd")
        config = ingestd_config(
            work / "bench.toml",
            self.info.feed_urls(),
            workdir=work,
            concurrency=conc,
            per_host=self.args.per_host or conc,
        )
        cold = self.add(
            f"ingestd cold c{conc}",
            measure(
                f"r{rnd} ingestd cold concurrency={conc}", ingestd_cmd(config), keep=self.server_pid
            ),
        )
        if cold.output.get("failed"):
            # A warm cycle is "nothing changed, all 304": feeds that failed cold are
            # fetched once more, unmeasured, so the warm run starts from a complete state.
            self.say(f"  {cold.output['failed']} feeds failed cold; one unmeasured settle run")
            self.add(
                "ingestd settle",
                measure(
                    f"r{rnd} ingestd settle (not in the table)",
                    ingestd_cmd(config),
                    keep=self.server_pid,
                ),
            )
        warm = self.add(
            f"ingestd warm c{conc}",
            measure(
                f"r{rnd} ingestd warm concurrency={conc}", ingestd_cmd(config), keep=self.server_pid
            ),
        )
        for phase, measured in (("cold", cold), ("warm", warm)):
            trials = self.concurrency_trials[phase]
            trials[conc] = min(measured.wall, trials.get(conc, measured.wall))

    def run_reader(self, rnd: int) -> None:
        assert self.info is not None
        urls = self.work / "urls.txt"
        urls.write_text("\n".join(self.info.feed_urls()) + "\n")
        counts = self.args.reader_workers if rnd == 0 else [self.reader_workers["cold"]]
        for workers in counts:
            db = new_run_folder(self.work, "reader") / "reader.sqlite"
            cold = measure(
                f"r{rnd} reader cold workers={workers}",
                reader_cmd(db, urls, workers),
                keep=self.server_pid,
            )
            warm_workers = self.reader_workers.get("warm", workers)
            warm = measure(
                f"r{rnd} reader warm workers={warm_workers}",
                reader_cmd(db, urls, warm_workers),
                keep=self.server_pid,
            )
            self.reader_trials["cold"][workers] = min(
                cold.wall, self.reader_trials["cold"].get(workers, cold.wall)
            )
            self.reader_trials["warm"][warm_workers] = min(
                warm.wall, self.reader_trials["warm"].get(warm_workers, warm.wall)
            )
            self.add(f"reader cold w{workers}", cold)
            self.add(f"reader warm w{warm_workers}", warm)
        if rnd == 0:
            self.reader_workers = best_per_phase(self.reader_trials)
            self.say(
                f"  reader best workers: cold {self.reader_workers['cold']}, "
                f"warm {self.reader_workers['warm']}"
            )

    def run_floor(self, rnd: int) -> None:
        self.add("floor feeds", measure(f"r{rnd} floor feedparser", floor_cmd("feeds", self.farm)))
        self.add(
            "floor feeds busy",
            measure(
                f"r{rnd} floor feedparser, every core at once", floor_cmd("feeds-busy", self.farm)
            ),
        )
        if "ingestd" in self.args.contenders:
            # The warm cycle's floor, at the concurrency ingestd's warm runs use.
            conc = self.concurrency.get("warm", self.args.concurrency[0])
            self.add(
                "floor http",
                measure(
                    f"r{rnd} floor httpx alone (304) concurrency={conc}",
                    floor_cmd("http", self.farm, str(conc)),
                    keep=self.server_pid,
                ),
            )

    def run_pipeline(self, rnd: int) -> None:
        assert self.info is not None
        work = new_run_folder(self.work, "pipeline")
        conc = self.concurrency.get("cold", self.args.concurrency[0])
        config = ingestd_config(
            work / "bench.toml",
            self.info.pipeline_urls(),
            workdir=work,
            concurrency=conc,
            per_host=self.args.per_host or conc,
            fetch_page=True,
        )
        steps: list[tuple[str, str, list[str]]] = [
            ("pipeline ingestd", "pipeline ingestd cold", ingestd_cmd(config)),
            ("pipeline floor", "pipeline floor readability+md", floor_cmd("pages", self.farm)),
            (
                "pipeline extract",
                "pipeline ingestd extract 1 core",
                floor_cmd("extract", self.farm),
            ),
        ]
        for key, label, cmd in steps if rnd % 2 == 0 else reversed(steps):
            self.add(key, measure(f"r{rnd} {label}", cmd, keep=self.server_pid))

    def run_big(self) -> None:
        assert self.info is not None
        big = self.info.big_url()
        if big is None:
            return
        work = new_run_folder(self.work, "big")
        conc = self.concurrency.get("cold", self.args.concurrency[0])
        config = ingestd_config(
            work / "bench.toml",
            [big],
            workdir=work,
            concurrency=conc,
            per_host=self.args.per_host or conc,
        )
        self.add(
            "big ingestd cold",
            measure("big feed ingestd cold", ingestd_cmd(config), keep=self.server_pid),
        )

    def run(self) -> None:
        _become_subreaper()
        compile_ingestd(self.say)
        self.start_server()
        assert self.server is not None
        self.generate()
        self.server.start()
        if isinstance(self.server, Nginx) and self.server.process is not None:
            self.server_pid = {self.server.process.pid}
        try:
            if "reader" in self.args.contenders and not self.has_reader:
                self.say(f"reader: skipped (no {READER_PYTHON}; bench/run installs it)")
            for rnd in range(self.args.rounds):
                self.say(f"round {rnd + 1} of {self.args.rounds}")
                order = [c for c in ("ingestd", "reader") if c in self.args.contenders]
                if rnd % 2:
                    order.reverse()
                for who in order:
                    if who == "ingestd":
                        self.run_ingestd(rnd)
                    elif self.has_reader:
                        self.run_reader(rnd)
                if "floor" in self.args.contenders:
                    self.run_floor(rnd)
                if "pipeline" in self.args.contenders and self.info and self.info.pipeline_feeds:
                    self.run_pipeline(rnd)
            self.run_big()
            if self.args.profile:
                self.profile()
        finally:
            self.server.stop()
            self.say("server stopped")
            shutil.rmtree(self.work, ignore_errors=True)  # every run's folder, at the end

    def profile(self) -> None:
        """ingestd cold, then warm, under py-spy (every process), summarised as text."""
        assert self.info is not None
        if not PY_SPY.exists():
            self.say(f"profile: skipped (no {PY_SPY}; bench/run --profile installs it)")
            return
        from bench.profile_report import report

        folder = Path(self.args.profile).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        work = new_run_folder(self.work, "profile")
        conc = self.concurrency.get("cold", self.args.concurrency[0])
        config = ingestd_config(
            work / "bench.toml",
            self.info.feed_urls(),
            workdir=work,
            concurrency=conc,
            per_host=self.args.per_host or conc,
        )
        for phase in ("cold", "warm"):
            raw = folder / f"ingestd-{phase}.collapsed"
            cmd = [
                str(PY_SPY),
                "record",
                "--subprocesses",
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--",
                *ingestd_cmd(config),
            ]
            measured = self.add(
                f"profile ingestd {phase}",
                measure(f"py-spy ingestd {phase}", cmd, keep=self.server_pid),
            )
            if raw.exists():
                title = (
                    f"ingestd fetch {phase}, {self.info.feeds} feeds x {self.info.items} "
                    f"items, under py-spy --subprocesses ({measured.wall:.1f} s wall; "
                    f"ingestd says {_brief(measured.output)})"
                )
                (folder / f"ingestd-{phase}.txt").write_text(report(raw.read_text(), title=title))
                self.say(f"profile: {folder / f'ingestd-{phase}.txt'}")

    # --- the table ---

    def rows(self) -> list[Row]:
        info = self.info
        assert info is not None
        total = info.feeds * info.items
        pages = info.pipeline_feeds * info.pipeline_items
        rows = []
        for phase in ("cold", "warm"):
            conc = self.concurrency.get(phase)
            key = f"ingestd {phase} c{conc}"
            if key in self.samples:
                label = "ingestd cold" if phase == "cold" else "ingestd warm (304)"
                rows.append(
                    Row(f"{label}, concurrency={conc}", self.samples[key], info.feeds, total)
                )
        for phase in ("cold", "warm"):
            workers = self.reader_workers.get(phase)
            key = f"reader {phase} w{workers}"
            if key in self.samples:
                label = "reader cold" if phase == "cold" else "reader warm (304)"
                rows.append(
                    Row(f"{label}, workers={workers}", self.samples[key], info.feeds, total)
                )
        if "floor feeds" in self.samples:
            rows.append(
                Row("floor: feedparser, 1 core", self.samples["floor feeds"], info.feeds, total)
            )
        if "floor feeds busy" in self.samples:
            rows.append(
                Row(
                    "floor: feedparser, one process per core at once",
                    self.samples["floor feeds busy"],
                    info.feeds,
                    total,
                )
            )
        if "floor http" in self.samples:
            conc = self.samples["floor http"][0].output.get("concurrency")
            rows.append(
                Row(
                    f"floor: httpx alone, all 304, concurrency={conc}",
                    self.samples["floor http"],
                    info.feeds,
                    total,
                )
            )
        for key, case in (
            ("pipeline ingestd", "pipeline: ingestd fetch_page"),
            ("pipeline floor", "pipeline floor: readability+md"),
            ("pipeline extract", "(ingestd extract_article, 1 core)"),
        ):
            if key in self.samples:
                rows.append(Row(case, self.samples[key], info.pipeline_feeds, pages))
        if "big ingestd cold" in self.samples:
            rows.append(
                Row("big feed: ingestd cold", self.samples["big ingestd cold"], 1, info.big_items)
            )
        return rows

    def floor_seconds(self, key: str) -> float | None:
        """The floor's own timed loop (files already in memory): its CPU seconds, median
        over rounds. CPU, not wall: on a shared machine a one-core loop's wall time
        includes waiting for a core, which is not what one core can do."""
        values = [m.output.get("cpu_seconds") for m in self.samples.get(key, [])]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        return statistics.median(numbers) if numbers else None

    def loop_seconds(self, key: str) -> float | None:
        """A floor's timed loop in wall seconds, median over rounds (the HTTP floor
        waits on the server as well as computing: its wall time is what it costs)."""
        values = [m.output.get("seconds") for m in self.samples.get(key, [])]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        return statistics.median(numbers) if numbers else None

    def parse_seconds(self) -> float | None:
        """ingestd's own parse stage in the cold runs: the CPU seconds its pool spent
        parsing and identifying the feed documents (``parse_cpu_seconds``), median."""
        conc = self.concurrency.get("cold")
        values = [
            m.output.get("parse_cpu_seconds") for m in self.samples.get(f"ingestd cold c{conc}", [])
        ]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        return statistics.median(numbers) if numbers else None

    def table(self) -> str:
        rows = self.rows()
        head = (
            "| case | seconds | feeds/s | entries/s | CPU s | peak RSS MB (largest process)"
            " | peak RSS MB (process tree) | wall spread | failed feeds | others' CPU s |"
        )
        lines = [head, "|" + "---|" * 10]
        for row in rows:
            seconds = row.seconds
            lines.append(
                f"| {row.case} | {seconds:.2f} | {row.feeds / seconds:.1f} | "
                f"{row.entries / seconds:.0f} | {row.cpu:.2f} | {row.max_rss:.0f} | "
                f"{row.tree_rss:.0f} | {row.spread()} | {row.failures()} | {row.others()} |"
            )
        return "\n".join(lines)

    def ratios(self) -> list[tuple[str, float, str, bool | None]]:
        """(what, value, target, met) for every target the run can judge."""
        by = {r.case.split(",")[0]: r for r in self.rows()}
        found: list[tuple[str, float, str, bool | None]] = []
        cores = os.cpu_count() or 1
        ingestd_cold = by.get("ingestd cold")
        reader_cold = by.get("reader cold")
        if ingestd_cold and reader_cold:
            value = ingestd_cold.seconds / reader_cold.seconds
            found.append(("cold: ingestd / reader time", value, "<= 0.5", value <= 0.5))
        warm, reader_warm = by.get("ingestd warm (304)"), by.get("reader warm (304)")
        if warm and reader_warm:
            value = warm.seconds / reader_warm.seconds
            found.append(("warm: ingestd / reader time", value, "<= 0.5", value <= 0.5))
        http_floor = self.loop_seconds("floor http")
        if warm and reader_warm and http_floor:
            found.append(
                (
                    "warm: httpx alone (timed loop) / reader warm time",
                    http_floor / reader_warm.seconds,
                    "informative (the HTTP client's own share of the budget)",
                    None,
                )
            )
            found.append(
                (
                    "warm: ingestd warm time / httpx alone (timed loop)",
                    warm.seconds / http_floor,
                    "informative",
                    None,
                )
            )
        floor = self.floor_seconds("floor feeds")
        parse = self.parse_seconds()
        if parse and floor:
            value = parse / floor
            found.append(
                (
                    "parse: ingestd's parse CPU s per feed / the floor's",
                    value,
                    "<= 1.25 (per core)",
                    value <= 1.25,
                )
            )
        busy = self.floor_seconds("floor feeds busy")
        if parse and busy:
            found.append(
                (
                    "parse: the same / the floor's with every core parsing",
                    parse / busy,
                    "informative (what a core does when all are busy)",
                    None,
                )
            )
        if ingestd_cold:
            found.append(
                (
                    "cold: cores busy (CPU s / wall s)",
                    ingestd_cold.cpu / ingestd_cold.seconds,
                    f"informative ({cores} cores)",
                    None,
                )
            )
        if ingestd_cold and floor:
            limit = 1.25 / cores
            value = ingestd_cold.seconds / floor
            found.append(
                (
                    f"cold: whole cycle / floor parse time ({cores} cores)",
                    value,
                    f"informative (parse alone on {cores} cores: {limit:.3f})",
                    None,
                )
            )
            cpu_value = ingestd_cold.cpu / floor
            found.append(
                (
                    "cold: ingestd CPU s / floor parse s",
                    cpu_value,
                    "informative (work per entry vs. parsing alone)",
                    None,
                )
            )
        if ingestd_cold:
            found.append(
                (
                    "cold: peak RSS (process tree), MB",
                    ingestd_cold.tree_rss,
                    f"< 300 at 10,000 feeds (this run: {ingestd_cold.feeds} feeds)",
                    None,
                )
            )
        pipe, pfloor = by.get("pipeline: ingestd fetch_page"), self.floor_seconds("pipeline floor")
        if pipe and pfloor:
            value = (pipe.entries / pipe.seconds) / (pipe.entries / pfloor)
            found.append(
                ("pipeline: ingestd pages/s / floor pages/s", value, ">= 0.75", value >= 0.75)
            )
        return found

    def report(self) -> dict[str, Any]:
        ratio_lines = ["| target | measured | wanted | met |", "|---|---|---|---|"]
        for what, value, target, met in self.ratios():
            mark = "" if met is None else ("yes" if met else "NO")
            ratio_lines.append(f"| {what} | {value:.3f} | {target} | {mark} |")
        text = self.table() + "\n\n" + "\n".join(ratio_lines)
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "versions": self.versions(),
            "command": " ".join(["bench/run", *sys.argv[1:]]),
            "farm": asdict(self.info) if self.info else None,
            "settings": {
                "concurrency": self.concurrency,
                "per_host": self.args.per_host,
                "rounds": self.args.rounds,
                "server": self.server.name if self.server else None,
            },
            "reader_workers": self.reader_workers,
            "reader_trials_seconds": self.reader_trials,
            "ingestd_concurrency_trials_seconds": self.concurrency_trials,
            "floors": {
                k: [m.output for m in self.samples.get(k, [])]
                for k in (
                    "floor feeds",
                    "floor feeds busy",
                    "floor http",
                    "pipeline floor",
                    "pipeline extract",
                )
            },
            "samples": {k: [asdict(m) for m in v] for k, v in self.samples.items()},
            "table_markdown": text,
        }

    def versions(self) -> dict[str, str]:
        found = {"python": platform.python_version()}
        probe = (
            "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n "
            "in %r if _has(n)}))"
        )
        for python, names in (
            (
                sys.executable,
                ["ingestd", "feedparser", "readability-lxml", "lxml", "httpx", "SQLAlchemy"],
            ),
            (str(READER_PYTHON), ["reader", "feedparser", "requests"]),
        ):
            if not Path(python).exists():
                continue
            code = (
                "import importlib.metadata as m, json\n"
                "def _has(n):\n    try:\n        m.version(n); return True\n"
                "    except m.PackageNotFoundError:\n        return False\n" + probe % names
            )
            out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
            try:
                values = json.loads(out.stdout)
            except ValueError:
                continue
            prefix = "" if python == sys.executable else "reader venv: "
            found.update({f"{prefix}{k}": v for k, v in values.items()})
        if self.nginx_version:
            found["nginx"] = self.nginx_version
        return found


def _brief(output: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "feeds",
        "ok",
        "not_modified",
        "failed",
        "new_entries",
        "archived",
        "entries",
        "errors",
        "seconds",
        "update_seconds",
        "pages",
        "parse_cpu_seconds",
    )
    brief = {k: output[k] for k in keep if k in output}
    if isinstance(brief.get("errors"), list):
        errors = brief["errors"]
        brief["errors"] = len(errors)
        if errors:
            brief["first_error"] = errors[0]
    return brief


def machine() -> dict[str, Any]:
    """nproc, memory and CPU model."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {"nproc": os.cpu_count(), "memory": memory, "cpu": model, "kernel": platform.release()}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--feeds", type=int, default=1000, help="farm feeds (default 1000)")
    parser.add_argument("--items", type=int, default=20, help="items per feed (default 20)")
    parser.add_argument(
        "--pipeline-feeds",
        type=int,
        default=25,
        help="full-pipeline feeds of 20 items (default 25: 500 pages)",
    )
    parser.add_argument(
        "--big-items",
        type=int,
        default=0,
        help="also run ingestd on one feed of this many items (memory check)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument(
        "--reader-workers",
        default="1,8,16,32",
        help="reader worker counts tried in round 1 (default 1,8,16,32)",
    )
    parser.add_argument(
        "--concurrency",
        default="2,4,16,64",
        help="ingestd [fetch] concurrency values tried in round 1 (default 2,4,16,64)",
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=0,
        help="ingestd [fetch] per_host (default: the concurrency, since the farm is one host)",
    )
    parser.add_argument(
        "--contenders",
        default="ingestd,reader,floor,pipeline",
        help="comma list of ingestd, reader, floor, pipeline",
    )
    parser.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument(
        "--dir",
        default=os.environ.get("BENCH_DIR", str(BENCH / "out")),
        help="work folder (default bench/out or $BENCH_DIR)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="also profile one ingestd cold run with py-spy into DIR",
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.reader_workers = [int(w) for w in str(args.reader_workers).split(",") if w.strip()]
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    args.contenders = {c.strip() for c in str(args.contenders).split(",") if c.strip()}
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table (progress on stderr)."""
    args = parse_args(argv)
    bench = Bench(args)
    bench.run()
    result = bench.report()
    target = Path(args.json) if args.json else bench.out / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    print(f"\n{result['date']}  {json.dumps(result['machine'])}")
    print(json.dumps(result["versions"]))
    print(
        f"farm: {args.feeds} feeds x {args.items} items; ingestd concurrency "
        f"{args.concurrency}, per_host {args.per_host}; reader workers {bench.reader_workers}"
    )
    print()
    print(result["table_markdown"])
    print(f"\nresults: {target}")
    failed = [m for ms in bench.samples.values() for m in ms if m.returncode not in (0, 1)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
