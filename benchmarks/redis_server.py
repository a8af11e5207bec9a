"""A redis-server for the ``shared`` workload, started by ``run.py`` itself.

On a free 127.0.0.1 port, without persistence, in a temporary folder; stopped at the
end. ``info()`` reads ``INFO`` over a plain socket (no client library in the parent), so
that the workload can count the commands Redis processed and the CPU it used.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Commands a client sends for the connection itself (never from a script).
_CONNECTION = frozenset({"hello", "auth", "select", "ping", "subscribe", "unsubscribe"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1."""

    def __init__(self, workdir: str) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "the shared workload needs redis-server on PATH "
                "(Debian/Ubuntu: apt-get install redis-server)"
            )
        self.port = free_port()
        command = [
            executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", workdir,
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - redis-server from PATH, no shell
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.info()
                break
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from exc
                time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, line: str) -> bytes:
        """One inline command; its reply's payload (a bulk string's content)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(line.encode() + b"\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("redis-server closed the connection")
                data += chunk
            head, _, rest = data.partition(b"\r\n")
            if not head.startswith(b"$"):
                return head
            size = int(head[1:])
            while len(rest) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("redis-server closed the connection")
                rest += chunk
            return rest[:size]

    def info(self) -> dict[str, str]:
        """``INFO`` as a dict (every section)."""
        fields = {}
        for line in self.command("INFO").decode().splitlines():
            key, sep, value = line.partition(":")
            if sep and not key.startswith("#"):
                fields[key] = value
        return fields

    def round_trips(self) -> tuple[int, int]:
        """Since the last ``CONFIG RESETSTAT``: (commands clients sent, all commands).

        Redis counts the commands a Lua script calls as commands too; those a client
        sends (each a round trip) are the scripts (``EVALSHA``, and ``SCRIPT LOAD`` after
        a ``NOSCRIPT``) and the connection's own (``HELLO``, ``SUBSCRIBE``, ``PING``...).
        ``INFO`` and ``CONFIG`` (this module's) are left out.
        """
        sent = every = 0
        for line in self.command("INFO commandstats").decode().splitlines():
            name, sep, stats = line.partition(":")
            if not sep or not name.startswith("cmdstat_"):
                continue
            name = name.removeprefix("cmdstat_")
            calls = int(stats.split(",")[0].partition("=")[2])
            if name == "info" or name.startswith("config|"):
                continue
            every += calls
            if name.startswith(("eval", "script|", "client|")) or name in _CONNECTION:
                sent += calls
        return sent, every

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer(workdir)
        try:
            yield server
        finally:
            server.stop()
