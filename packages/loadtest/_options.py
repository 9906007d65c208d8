"""The load test's own command-line options (read back by _settings).

Locust forwards these options to its workers in distributed mode, and each one can also be given
as an environment variable (`LOCUST_SLEEP_MS=200`), like Locust's own options.
"""

from __future__ import annotations

from typing import Any

from _events import listen
from _plan import ATTACKS


def add_options(parser: Any) -> None:
    group = parser.add_argument_group("thread-pool saturation and starvation test")

    def option(name: str, **kwargs: Any) -> None:
        env_var = "LOCUST_" + name.lstrip("-").replace("-", "_").upper()
        group.add_argument(name, env_var=env_var, **kwargs)

    option(
        "--mode",
        choices=["closed", "open", "knee"],
        default="closed",
        help="closed: users wait for answers; open: requests arrive at a fixed rate; knee: "
        "arrivals ramp up from half the pool's capacity until p95 breaks --slo-ms",
    )
    option(
        "--server-name",
        default="",
        help="name of the server under test (default: its "
        "Server header, else HOST:PORT); used in the title and the report file names",
    )
    option(
        "--server-pid",
        type=int,
        default=0,
        help="sample this process (and its children) from /proc: threads, busy threads, CPU, "
        "open connections; scripts/with-server sets it",
    )
    option(
        "--pool-threads",
        type=int,
        default=0,
        help="the server's thread count (default: read from its stats, else 5)",
    )
    option(
        "--steps",
        default="",
        help="load steps as multiples of the thread count (closed, open; default 0.5,1,2,4) or "
        "of the capacity (knee; default 0.5,0.75,1,1.25,1.5,2)",
    )
    option("--step-seconds", type=float, default=15.0, help="how long each step is held")
    option(
        "--settle-seconds",
        type=float,
        default=0.0,
        help="start of each step left out of its numbers (default: a fifth of the step)",
    )
    option("--sleep-ms", type=int, default=100, help="what the slow route sleeps per request")
    option("--sleep-path", default="/sleep?ms={ms}", help="the slow route ({ms} is replaced)")
    option("--cheap-path", default="/hello", help="the cheap route")
    option(
        "--stats-path",
        default="/_treadle/stats",
        help="the server's stats path, sampled during the run ('' for none)",
    )
    option(
        "--idle-users",
        type=int,
        default=-1,
        help="keep-alive users that mostly idle during the steps (default: twice the threads)",
    )
    option(
        "--idle-seconds",
        type=float,
        default=2.0,
        help="how long an idle user waits between requests (keep under the server's "
        "keep-alive timeout)",
    )
    option(
        "--arrival-ms",
        type=int,
        default=0,
        help="open and knee modes: the interval between one user's requests (default: open "
        "5x sleep-ms, so the steps offer 10%%-80%% of the pool; knee 2x sleep-ms)",
    )
    option(
        "--slo-ms",
        type=float,
        default=0.0,
        help="knee: the p95 the server must keep (default 5x sleep-ms)",
    )
    option(
        "--attacks",
        default=",".join(ATTACKS),
        help="starvation phases, run before the steps ('' for none): " + ", ".join(ATTACKS),
    )
    option(
        "--attackers",
        type=int,
        default=-1,
        help="connections each attack holds (default: 1.5x the threads, rounded up: 8 for 5)",
    )
    option("--attack-seconds", type=float, default=6.0, help="how long each attack is held")
    option(
        "--attack-bound-ms",
        type=float,
        default=1000.0,
        help="a new connection must be answered within this while an attack holds its "
        "connections (judged on the 90th percentile; unanswered ones count as slow)",
    )
    option(
        "--recovery-seconds",
        type=float,
        default=30.0,
        help="after an attack, wait up to this long for the server to answer again before "
        "the next phase",
    )
    option("--probe-ms", type=int, default=250, help="a new connection every this many ms")
    option(
        "--trickle-seconds",
        type=float,
        default=1.0,
        help="half-head and slow-body attackers send one byte this often",
    )
    option("--body-path", default="/echo", help="the route that reads a request body")
    option(
        "--big-bytes",
        type=int,
        default=0,
        help="no-read attackers send a body this large to --body-path, which echoes it back "
        "(default: 1.5x the kernel's largest TCP send buffer, at least 6 MB, so the answer "
        "cannot fit in the socket buffers)",
    )
    option("--request-timeout", type=float, default=5.0, help="client timeout, seconds")
    option("--max-fail-ratio", type=float, default=0.01, help="failures allowed per step")
    option(
        "--latency-factor",
        type=float,
        default=2.0,
        help="p95 may reach this many times the expected latency...",
    )
    option("--latency-slack-ms", type=float, default=100.0, help="...plus this many ms")
    option(
        "--min-throughput",
        type=float,
        default=0.5,
        help="each step must reach this fraction of the expected throughput (knee: the "
        "highest sustained rate, of the capacity)",
    )
    option(
        "--busy-pressure",
        type=float,
        default=0.5,
        help="a step during which runnable tasks waited for a CPU this share of the time "
        "(Linux PSI) is too busy to time: its latency and throughput rules become notes",
    )
    option(
        "--report-prefix",
        default="",
        help="where the plot, verdict and samples go (default: beside --html or --csv, else "
        "reports/loadtest/SERVER-MODE)",
    )


listen("init_command_line_parser", add_options)
