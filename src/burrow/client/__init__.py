"""Clients of a Burrow server: blocking (`Client`) and asyncio (`AsyncClient`).

    with Client("http://127.0.0.1:8080", "my-account") as client:
        jobs = client.queue("jobs")
        jobs.put(b"resize image 42")
        jobs.work(handle, max_messages=10)

`AsyncClient` also offers the storage operations of `burrow.backends.base.Backend`
over HTTP. The wire format itself is in `wire` and `calls`, free of I/O.
"""

from burrow.client.aio import AsyncClient, AsyncQueue
from burrow.client.endpoint import DEFAULT_TIMEOUT
from burrow.client.loops import Stop, WorkStats
from burrow.client.sync import Client, Queue
from burrow.model import Draft, Message

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "AsyncQueue",
    "Client",
    "Draft",
    "Message",
    "Queue",
    "Stop",
    "WorkStats",
]
