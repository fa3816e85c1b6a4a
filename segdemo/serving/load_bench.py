"""Load benchmark: N concurrent sessions upload a photo to one Segment page server.

``python -m segdemo bench --load --sessions 1 10 30``

A Streamlit server (``streamlit run app.py``) is started on 127.0.0.1 on a free
port; N clients speaking Streamlit's websocket protocol
(:mod:`segdemo.serving.protocol`) open the Segment page, then all upload a photo
at the same moment (a class after "now upload your photo"). Measured per
session: upload-to-result (from the upload request to the end of the run that
shows the result) and a display-only change right after (the view radio). An
error is a run with an exception element, a run past the timeout, or a result
without the result image. Server RSS is sampled from ``/proc`` (peak).

Bounded: at most :data:`MAX_SESSIONS` sessions, each run at most
:data:`segdemo.serving.protocol.RUN_TIMEOUT_S` seconds; loopback only.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from segdemo import config
from segdemo.serving.protocol import RunResult, StreamlitSession

MAX_SESSIONS = 200
REPO = Path(__file__).resolve().parents[2]
SAMPLES = ("cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg")
GOALS = {"upload_p95_30": 3.0, "display_p95_30": 1.0, "rss_100_mb": 2500.0}
UPLOADER_KEY = "segment_uploader"
VIEW_KEY = "segment_view"


@dataclass
class LoadResult:
    """Figures of one load run (seconds, MB)."""

    sessions: int
    upload_s: list[float] = field(default_factory=list)
    display_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0
    payload_kb: list[float] = field(default_factory=list)  # bytes received by the upload run
    display_payload_kb: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0  # server CPU time from the upload signal to the last session's end
    load_avg: float = 0.0  # the machine's 1-minute load average at the end (others' work included)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear interpolation between order statistics (numpy's default)."""
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its threads so far (Linux ``/proc``; 0 elsewhere).

    On a machine shared with other work, wall-clock times depend on the others' load;
    the CPU time the server spends per session does not (much).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Server:
    """``streamlit run app.py`` on a free loopback port, for the duration of a ``with`` block."""

    def __init__(self, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        out = open(self.log, "w") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(self.port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--server.runOnSave", "false"],
            cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("streamlit did not become healthy in 90 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _has_result(run: RunResult) -> bool:
    return bool(run.images)


async def _one_session(url: str, index: int, start: asyncio.Event, ready: Callable[[], None],
                       result: LoadResult, images: Sequence[tuple[str, bytes]]) -> None:
    session = StreamlitSession(url, page_name="Segment")
    try:
        await session.connect()
        first = await session.rerun()
        if not first.ok:
            result.errors.append(f"session {index}: page load failed {first.exceptions[:1]}")
            return
        ready()
        await start.wait()
        name, data = images[index % len(images)]
        up = await session.upload(UPLOADER_KEY, f"s{index:03d}_{name}", data)
        if not up.ok or not _has_result(up):
            result.errors.append(f"session {index}: upload run failed "
                                 f"(timeout={up.timed_out}, {up.exceptions[:1]}, images={len(up.images)})")
            return
        result.upload_s.append(up.seconds)
        result.payload_kb.append(up.bytes_received / 1024)
        view = session.widget_id(VIEW_KEY)
        # "mask" instead of "overlay": display only (a radio's state is its option's displayed text)
        session.set_widget(view, string_value=session.elements[view].radio.options[1])
        shown = await session.rerun(fragment_id=session.fragment_of.get(view, ""))
        if not shown.ok or not _has_result(shown):
            result.errors.append(f"session {index}: display change failed "
                                 f"(timeout={shown.timed_out}, {shown.exceptions[:1]})")
            return
        result.display_s.append(shown.seconds)
        result.display_payload_kb.append(shown.bytes_received / 1024)
    except Exception as exc:  # a benchmark reports every failure as an error, never stops
        result.errors.append(f"session {index}: {type(exc).__name__}: {exc}")
    finally:
        try:
            await session.close()
        except Exception:  # noqa: BLE001 - closing a broken socket
            pass


async def _load(url: str, n: int, pid: int, images: Sequence[tuple[str, bytes]]) -> LoadResult:
    result = LoadResult(sessions=n)
    start = asyncio.Event()
    ready_count = [0]

    def ready() -> None:
        ready_count[0] += 1

    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result.rss_peak_mb = max(result.rss_peak_mb, rss_mb(pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tasks = [asyncio.create_task(_one_session(url, i, start, ready, result, images)) for i in range(n)]
    deadline = time.monotonic() + 60 + 2 * n
    while ready_count[0] + len(result.errors) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
    start.set()
    await asyncio.gather(*tasks)
    result.wall_s = time.perf_counter() - t0
    result.server_cpu_s = cpu_seconds(pid) - cpu0
    result.load_avg = os.getloadavg()[0]
    stop.set()
    sampler.join()
    result.rss_end_mb = rss_mb(pid)
    return result


def sample_images() -> list[tuple[str, bytes]]:
    """The photos the sessions upload (the gallery's, in turn)."""
    return [(name, (config.SAMPLES_DIR / name).read_bytes()) for name in SAMPLES]


def run_load(session_counts: Sequence[int], env: dict[str, str] | None = None,
             log: Callable[[str], None] = print, server_log: Path | None = None) -> list[LoadResult]:
    """Start one server, warm it with one session, then run each session count in turn."""
    counts = [max(1, min(MAX_SESSIONS, n)) for n in session_counts]
    images = sample_images()
    results = []
    with Server(env, server_log) as server:
        assert server.proc is not None
        log(f"server {server.url} pid {server.proc.pid}; warm-up session")
        asyncio.run(_load(server.url, 1, server.proc.pid, images))  # model load, imports
        for n in counts:
            log(f"{n} sessions ...")
            results.append(asyncio.run(_load(server.url, n, server.proc.pid, images)))
    return results


def format_results(results: Sequence[LoadResult]) -> str:
    """A table of the figures with the goals of issue 15."""
    header = ("sessions", "upload p50", "p95", "max", "display p50", "p95", "errors", "RSS peak MB",
              "KB/upload run", "KB/display run", "server CPU s/session", "load avg")
    rows = [header]
    for r in results:
        rows.append((str(r.sessions), f"{percentile(r.upload_s, 50):.2f}", f"{percentile(r.upload_s, 95):.2f}",
                     f"{max(r.upload_s) if r.upload_s else float('nan'):.2f}",
                     f"{percentile(r.display_s, 50):.2f}", f"{percentile(r.display_s, 95):.2f}",
                     str(len(r.errors)), f"{r.rss_peak_mb:.0f}",
                     f"{statistics.mean(r.payload_kb) if r.payload_kb else 0:.0f}",
                     f"{statistics.mean(r.display_payload_kb) if r.display_payload_kb else 0:.0f}",
                     f"{r.server_cpu_s / max(1, r.sessions):.2f}", f"{r.load_avg:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("times in seconds; upload = upload request to the end of the run showing the result; "
                 "display = view change right after; server CPU s/session = the server's CPU time "
                 "(all threads) for one session's upload + display change, the figure least affected by "
                 "other work on a shared machine; load avg = the machine's 1-min load at the end")
    for r in results:
        verdicts = []
        if r.sessions == 30:
            verdicts.append(f"upload p95 {percentile(r.upload_s, 95):.2f} s vs goal {GOALS['upload_p95_30']} s: "
                            + ("met" if percentile(r.upload_s, 95) <= GOALS["upload_p95_30"] else "MISSED"))
            verdicts.append(f"display p95 {percentile(r.display_s, 95):.2f} s vs goal {GOALS['display_p95_30']} s: "
                            + ("met" if percentile(r.display_s, 95) <= GOALS["display_p95_30"] else "MISSED"))
        if r.sessions >= 100:
            ok = not r.errors and r.rss_peak_mb <= GOALS["rss_100_mb"]
            verdicts.append(f"{r.sessions} sessions: {len(r.errors)} errors, RSS {r.rss_peak_mb:.0f} MB vs goal "
                            f"0 errors and {GOALS['rss_100_mb']:.0f} MB: " + ("met" if ok else "MISSED"))
        for v in verdicts:
            lines.append(f"goal: {v}")
        for e in r.errors[:5]:
            lines.append(f"error ({r.sessions} sessions): {e}")
    return "\n".join(lines)
