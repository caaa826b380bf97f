"""Throwaway Redis processes on 127.0.0.1 for the tests (and the cluster benchmark): one server, or a cluster.

When redis-server is missing, a test asking for one is skipped with a reason `pytest -rs` lists;
BOLT_REQUIRE_REDIS=1 (set by CI) turns that skip into a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ports import free_port, wait_for_port


class RedisServer:
    """A throwaway redis-server (no persistence) that a test can stop and start again on the same port."""

    def __init__(self, binary: str, *options: str) -> None:
        self.binary = binary
        self.options = options
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


def redis_binary_or_skip() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("BOLT_REQUIRE_REDIS") == "1":
            pytest.fail("BOLT_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed: Redis tests skipped (BOLT_REQUIRE_REDIS=1 makes this fail)")
    return binary


class RedisCluster:
    """A throwaway Redis Cluster on 127.0.0.1: `masters` masters with one replica each, no persistence.

    Started with `redis-cli --cluster create`, bounded in time, and removed (processes and their
    config files) by `stop()`. `kill_master_of(key)` SIGKILLs the master owning a key's slot and
    waits until its replica has taken over.
    """

    NODE_TIMEOUT_MS = 1000  # how long a master may be silent before its replica takes over

    def __init__(self, binary: str, masters: int = 3) -> None:
        import tempfile

        self.binary = binary
        self.cli = shutil.which("redis-cli") or "redis-cli"
        self.directory = tempfile.mkdtemp(prefix="bolt-cluster-")
        self.ports = [_cluster_port() for _ in range(2 * masters)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:masters])

    def _start_node(self, port: int) -> None:
        self.processes[port] = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS), "--dir", self.directory,
             "--cluster-replica-validity-factor", "0"],  # a replica always takes over, however stale
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, process=self.processes[port])

    def command(self, port: int, *args: str) -> str:
        return subprocess.run([self.cli, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout

    def start(self) -> None:
        for port in self.ports:
            self._start_node(port)
        subprocess.run([self.cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       capture_output=True, timeout=60, check=True)
        self.wait_until_ok()

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and every master has its replica attached."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [port for port, process in self.processes.items() if process.poll() is None]
            try:
                if all("cluster_state:ok" in self.command(port, "cluster", "info") for port in live) and all(
                        "role:master" in info or "master_link_status:up" in info
                        for info in (self.command(port, "info", "replication") for port in live)):
                    return
            except subprocess.SubprocessError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the Redis Cluster was not ok after {timeout} s")

    def master_of(self, key: str) -> int:
        """The port of the master that owns `key`'s slot now."""
        live = next(port for port, process in self.processes.items() if process.poll() is None)
        slot = int(self.command(live, "cluster", "keyslot", key))
        for line in self.command(live, "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(fields[1].split(":")[1].split("@")[0])
        raise LookupError(f"no master owns slot {slot}")

    def replica_of(self, master: int) -> int:
        """The port of `master`'s replica."""
        nodes = [line.split() for line in self.command(master, "cluster", "nodes").splitlines()]
        master_id = next(fields[0] for fields in nodes if "myself" in fields[2])
        return next(int(fields[1].split(":")[1].split("@")[0]) for fields in nodes if fields[3] == master_id)

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.kill()
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, both below the ephemeral range.

    Outgoing connections take their local ports from the ephemeral range: a bus port there can be
    taken by one of them between this check and the node's start, and the node then fails to start.
    """
    import random
    import socket

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            ephemeral = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768  # Linux's default start of the range
    for _ in range(200):
        port = random.randrange(10000, max(10001, ephemeral - 10000))
        try:
            with socket.socket() as one, socket.socket() as bus:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a Redis Cluster node")


def redis_cluster_or_skip() -> RedisCluster:
    binary = redis_binary_or_skip()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    major = int(version.split("v=")[1].split(".")[0]) if "v=" in version else 0
    if major < 7 or shutil.which("redis-cli") is None:
        reason = f"a Redis Cluster with sharded pub/sub needs redis-server 7.0+ and redis-cli ({version.strip()})"
        if os.environ.get("BOLT_REQUIRE_REDIS") == "1":
            pytest.fail(f"BOLT_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(reason)
    return RedisCluster(binary)
