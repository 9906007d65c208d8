"""The load test's own command-line options (read back by _settings).

Locust forwards these options to its workers in distributed mode, and each one can also be given
as an environment variable (`LOCUST_SLEEP_MS=200`), like Locust's own options.
"""

from __future__ import annotations

from typing import Any

from _events import listen


def add_options(parser: Any) -> None:
    group = parser.add_argument_group("treadle saturation test")

    def option(name: str, **kwargs: Any) -> None:
        env_var = "LOCUST_" + name.lstrip("-").replace("-", "_").upper()
        group.add_argument(name, env_var=env_var, **kwargs)

    option(
        "--mode",
        choices=["closed", "open"],
        default="closed",
        help="closed: users wait for answers; open: requests arrive at a fixed rate",
    )
    option(
        "--pool-threads",
        type=int,
        default=0,
        help="the server's thread count (default: read from its stats, else 5)",
    )
    option("--steps", default="1,2,4", help="load steps as multiples of the thread count")
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
        help="keep-alive users that mostly idle (default: twice the thread count)",
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
        help="open mode: the interval between one user's requests "
        "(default: 5x sleep-ms, so the steps offer 20%%, 40%% and 80%% of the pool)",
    )
    option("--request-timeout", type=float, default=5.0, help="client timeout, seconds")
    option("--max-fail-ratio", type=float, default=0.01, help="failures allowed per step")
    option(
        "--latency-factor",
        type=float,
        default=1.5,
        help="p95 may reach this many times the expected latency...",
    )
    option("--latency-slack-ms", type=float, default=50.0, help="...plus this many ms")
    option(
        "--min-throughput",
        type=float,
        default=0.5,
        help="each step must reach this fraction of the expected throughput",
    )
    option(
        "--report-prefix",
        default="",
        help="where the plot and stats samples go (default: beside --html or --csv)",
    )


listen("init_command_line_parser", add_options)
