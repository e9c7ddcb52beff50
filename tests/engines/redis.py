"""Throwaway Redis deployments from the local binaries: standalone, Cluster, Sentinel.

Session fixtures start one standalone server and one 3-master Cluster; the
`*_backend_url` fixtures flush them before each test. Failover tests get
deployments of their own (`redis_sentinel`, `redis_failover_cluster`), since
they kill a primary. Every process is stopped by its PID. A missing
`redis-server` fails the fixtures: these tests are never skipped silently.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.waiting import wait_until

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
MASTER = "burrow-master"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: the Redis backend tests need it", pytrace=False)
    return found


def free_port(cluster: bool = False) -> int:
    """A port nobody listens on; for Cluster nodes the bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
            if not cluster:
                return port
            if port + 10000 > 65535:
                continue
            with socket.socket() as bus:
                try:
                    bus.bind((HOST, port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Wait until `condition()` holds; Redis errors meanwhile count as not yet."""
    wait_until(condition, what, timeout, ignoring=(redis.RedisError, OSError))


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) process in a directory of its own."""

    workdir: Path
    args: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> RedisProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self.client().ping, f"redis on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(HOST, self.port, socket_timeout=2, socket_connect_timeout=1)

    def info(self, section: str) -> dict[str, object]:
        with self.client() as client:
            found: dict[str, object] = client.info(section)
            return found

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to hand anything over."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(workdir: Path, *extra: str, cluster: bool = False) -> RedisProcess:
    port = free_port(cluster)
    args = [binary("redis-server"), "--port", str(port), "--bind", HOST]
    # Every write fsynced to the AOF: what the backend's default durability (fsync) asks for.
    args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
    args += ["--dir", str(workdir / str(port))]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-node-timeout", "1000"]
    return RedisProcess(workdir / str(port), [*args, *extra], port).start()


@dataclass
class Deployment:
    """The processes of one deployment, stopped together."""

    servers: list[RedisProcess]
    sentinels: list[RedisProcess] = field(default_factory=list)

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()

    def masters(self) -> list[RedisProcess]:
        return [s for s in self.servers if s.info("replication")["role"] == "master"]

    @property
    def cluster_url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{s.port}" for s in self.servers)

    @property
    def sentinel_url(self) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}"

    def flush(self) -> None:
        for server in self.masters():
            with server.client() as client:
                client.flushall()


def start_cluster(workdir: Path, masters: int, replicas: int) -> Deployment:
    nodes = [start_server(workdir, cluster=True) for _ in range(masters * (1 + replicas))]
    deployment = Deployment(nodes)
    try:
        subprocess.run(
            [binary("redis-cli"), "--cluster", "create"]
            + [f"{HOST}:{n.port}" for n in nodes]
            + ["--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        wait_for(lambda: all(cluster_ok(n) for n in nodes), "cluster_state:ok")
        if replicas:
            wait_for(lambda: len(deployment.masters()) == masters, "replicas to attach")
            wait_for(lambda: all(replica_synced(n) for n in nodes), "replicas to sync")
    except BaseException:
        deployment.stop()
        raise
    return deployment


def cluster_ok(node: RedisProcess) -> bool:
    with node.client() as client:
        info: str = client.execute_command("CLUSTER", "INFO").decode()
        return "cluster_state:ok" in info


def replica_synced(node: RedisProcess) -> bool:
    info = node.info("replication")
    return info["role"] == "master" or info.get("master_link_status") == "up"


def start_sentinel(workdir: Path) -> Deployment:
    """One primary, one replica, three sentinels that fail over within about a second."""
    master = start_server(workdir)
    replica = start_server(workdir, "--replicaof", HOST, str(master.port))
    deployment = Deployment([master, replica])
    try:
        for _ in range(3):
            port = free_port()
            directory = workdir / f"sentinel-{port}"
            directory.mkdir()
            config = directory / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind {HOST}\ndir {directory}\n"
                f"sentinel monitor {MASTER} {HOST} {master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 500\n"
                f"sentinel failover-timeout {MASTER} 2000\n"
            )
            sentinel = RedisProcess(directory, [binary("redis-sentinel"), str(config)], port)
            deployment.sentinels.append(sentinel.start())
        wait_for(lambda: replica_synced(replica), "the replica to sync")
        wait_for(lambda: all(sentinel_ready(s) for s in deployment.sentinels), "sentinels")
    except BaseException:
        deployment.stop()
        raise
    return deployment


def sentinel_ready(sentinel: RedisProcess) -> bool:
    with sentinel.client() as client:
        peers = client.execute_command("SENTINEL", "SENTINELS", MASTER)
        replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER)
        return len(peers) == 2 and len(replicas) == 1


def sentinel_master_port(sentinel: RedisProcess) -> int:
    with sentinel.client() as client:
        _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return int(port)


@pytest.fixture(scope="session")
def redis_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = Deployment([start_server(tmp_path_factory.mktemp("redis"))])
    yield deployment
    deployment.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start_cluster(tmp_path_factory.mktemp("redis-cluster"), masters=3, replicas=0)
    yield deployment
    deployment.stop()


@pytest.fixture
def redis_backend_url(redis_standalone: Deployment) -> str:
    """`redis://…` of an empty standalone server."""
    redis_standalone.flush()
    return f"redis://{HOST}:{redis_standalone.servers[0].port}/0"


@pytest.fixture
def redis_cluster_backend_url(redis_cluster: Deployment) -> str:
    """`redis+cluster://…` of an empty 3-master Cluster."""
    redis_cluster.flush()
    return redis_cluster.cluster_url


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[Deployment]:
    """A Sentinel deployment of its own (failover tests kill its primary)."""
    deployment = start_sentinel(tmp_path / "sentinel")
    yield deployment
    deployment.stop()


@pytest.fixture
def redis_failover_cluster(tmp_path: Path) -> Iterator[Deployment]:
    """A Cluster of 3 masters with 1 replica each, of its own (failover tests kill one)."""
    deployment = start_cluster(tmp_path / "cluster", masters=3, replicas=1)
    yield deployment
    deployment.stop()
