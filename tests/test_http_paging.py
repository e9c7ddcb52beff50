"""A proxy on the `http` backend in front of a server that answers one page per call."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.servers import BurrowServer

PAGE = 3  # the remote server's default page: every listing below spans several


def remote_and_proxy(start_server: ServerFactory, tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "remote.toml").write_text(f"[limits]\ndefault_limit = {PAGE}\n")
    remote: BurrowServer = start_server("memory://", "--config", str(tmp_path / "remote.toml"))
    return remote.url, start_server(remote.url).url


def test_a_purge_through_the_proxy_empties_the_remote_queue(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    remote, proxy = remote_and_proxy(start_server, tmp_path)
    httpx.put(f"{proxy}/v1.0/a/q", json=[{"body": str(n)} for n in range(10)])
    assert httpx.delete(f"{proxy}/v1.0/a/q").status_code == 204  # detail=none: a purge
    assert httpx.get(f"{remote}/v1.0/a/q", params={"match_hidden": "true"}).status_code == 404


def test_a_pop_through_the_proxy_takes_its_page_only(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    remote, proxy = remote_and_proxy(start_server, tmp_path)
    httpx.put(f"{proxy}/v1.0/a/q", json=[{"body": str(n)} for n in range(10)])
    popped = httpx.delete(f"{proxy}/v1.0/a/q", params={"limit": 4, "detail": "id"}).json()
    assert len(popped) == 4
    left = httpx.get(f"{remote}/v1.0/a/q", params={"limit": 100, "detail": "id"}).json()
    assert len(left) == 6 and not set(left) & set(popped)


def test_a_ring_over_http_members_lists_and_deletes_every_queue(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """The ring lists its members' names without a limit: the http member pages them."""
    remote, _ = remote_and_proxy(start_server, tmp_path)
    (tmp_path / "ring.toml").write_text(
        f'[ring]\nzone = "az1"\nreplicas = 1\n[[ring.member]]\nurl = "{remote}"\nzone = "az1"\n'
    )
    ring = start_server(f"ring:///{tmp_path}/ring.toml").url
    queues = [f"q{n}" for n in range(10)]
    for queue in queues:
        httpx.put(f"{remote}/v1.0/a/{queue}/m", content=b"x")
    listed = httpx.get(f"{ring}/v1.0/a", params={"limit": 100}).json()
    assert sorted(listed) == queues
    assert httpx.delete(f"{ring}/v1.0/a").status_code == 204
    assert httpx.get(f"{remote}/v1.0/a").status_code == 404
