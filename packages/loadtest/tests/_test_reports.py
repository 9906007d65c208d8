"""What a run leaves behind, for any server: its name, the plot, the summary, the peers page."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _fakes import attack_rows, begun, fill, healthy_step, settings, start_of

from _book import Book
from _overlay import draw as draw_overlay
from _peers import markdown, table
from _plan import make_plan
from _plot import draw
from _session import name_server, slug
from _summary import summarize
from _tally import SLEEP
from _verdict import Thresholds, Verdict, judge


class Quiet(http.server.BaseHTTPRequestHandler):
    server_version = "waitress"
    sys_version = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_is_named_by_option_else_its_server_header_else_its_address() -> None:
    with http_server() as url:
        assert name_server(settings(server_name="cheroot 11"), url) == "cheroot 11"
        assert name_server(settings(), url) == "waitress"
    assert name_server(settings(), url) == url.removeprefix("http://")
    assert slug("cheroot 11") == "cheroot-11"
    assert slug("127.0.0.1:8000") == "127.0.0.1-8000"


def closed_verdict() -> tuple[Verdict, Book]:
    plan = make_plan(settings(steps="1,2", attacks="silent"), threads=5)
    book = begun(plan)
    for step in plan.steps:
        fill(book, healthy_step(book, step))
    fill(book, attack_rows(book, plan.attacks[0], 4.0))
    return judge(plan, book, Thresholds()), book


def knee_summary(server: str, slow_from: float, starved: bool) -> dict[str, object]:
    plan = make_plan(settings(mode="knee", steps="0.5,1,1.5", attacks="silent"), threads=5)
    book = begun(plan)
    for step in plan.steps:
        ms = 3000.0 if step.multiple >= slow_from else 105.0
        start = start_of(book, step)
        fill(book, [(start + i / step.rate, SLEEP, ms, "") for i in range(int(10 * step.rate))])
    fill(book, attack_rows(book, plan.attacks[0], 5000.0, "timed out" if starved else ""))
    verdict = judge(plan, book, Thresholds(slo_ms=500.0))
    summary = summarize(verdict, server, book)
    summary["verdict_text"] = f"{server}: made up\n"
    return summary


def test_plot_without_server_samples_and_with_proc_samples(tmp_path: Path) -> None:
    verdict, book = closed_verdict()
    t0 = book.t0
    samples = [{"t": t0 + i, "users_SleepUser": 5, "users_NewcomerUser": 1} for i in range(30)]
    draw(str(tmp_path / "client.png"), verdict, book, samples, "waitress")
    for i, row in enumerate(samples):
        row.update(proc_threads=6, proc_busy_threads=i % 6, proc_connections=12)
        row["proc_cpu_percent"] = 40.0
    draw(str(tmp_path / "proc.png"), verdict, book, samples, "waitress")
    assert (tmp_path / "client.png").stat().st_size > 10_000
    assert (tmp_path / "proc.png").stat().st_size > 10_000


def test_summary_carries_the_knee_and_each_attack() -> None:
    summary = knee_summary("treadle", slow_from=1.5, starved=False)
    knee = summary["knee"]
    assert isinstance(knee, dict)
    assert knee["sustained_offered_rps"] == 50
    assert knee["slo_broken_at_rps"] == 75
    attacks = summary["attacks"]
    assert isinstance(attacks, list)
    (attack,) = attacks
    assert attack["attack"] == "silent"
    assert attack["passed"] is False
    assert attack["p90_ms"] > 4000


def test_peers_table_overlay_and_page(tmp_path: Path) -> None:
    runs = [
        knee_summary("treadle", slow_from=1.5, starved=False),
        knee_summary("cheroot", slow_from=1.0, starved=True),
    ]
    rows = table(runs)
    assert rows[0].startswith("| server | verdict | sustained req/s | queue grows from |")
    assert rows[2].startswith("| treadle | **FAIL** | 50.")
    assert rows[3].startswith("| cheroot | **FAIL** | 25.") and "**FAIL**, no answer |" in rows[3]
    draw_overlay(str(tmp_path / "peers.png"), runs)
    assert (tmp_path / "peers.png").stat().st_size > 10_000
    page = markdown(runs, "peers.png", [])
    assert "![knee, throughput and starvation per server](peers.png)" in page
    assert "### cheroot\n\n```\ncheroot: made up\n```" in page
    assert "_host.py cheroot --threads 5" in page
