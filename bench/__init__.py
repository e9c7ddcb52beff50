"""Burrow's benchmarks: a package run from the repository root, one module per command.

    python -m bench.run --quick       # throughput against the no-op ceiling and Zaqar
    python -m bench.scale --quick     # 1 process against 2 on a shared engine
    python -m bench.waiters           # idle long polls: memory, and how soon each is answered
    python -m bench.wakeups           # long polls and hide expiry, per backend and across servers
    python -m bench.backend_puts      # the SQLite backend alone, no HTTP
    python -m bench.load --port P ... # one phase against a running server

Run as modules, the benchmarks import each other and the test suite's engine helpers
(`tests/engines`) as packages from the root. See README.md.
"""
