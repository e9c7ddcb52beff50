"""Run `burrow` under cProfile and write its stats when it exits (SIGTERM included).

    python bench/profiled.py OUT.prof serve --backend sqlite:///x.db --port 8080
    python -m pstats OUT.prof        # then: sort tottime, stats 30

What `python -m bench.run --profile DIR` runs each Burrow server with. Only the main
thread is profiled: the event loop, where a server's requests and its backend's SQL
run (SQLite's fsyncs and checkpoints have threads of their own). Profiling slows the
server down: read its figures for where the time goes, not for how fast it is.
"""

from __future__ import annotations

import cProfile
import sys

from burrow.cli import main


def profiled() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    sys.argv = ["burrow", *args]
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        main()
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    profiled()
