"""A uvicorn server in a process of its own, for the tests that need real processes (several workers,
a server killed mid-request, a stream cut when its worker goes away).

``start_server(cmd, env, log, url)`` starts the command, writing its output to ``log``, and returns once
``GET {url}/healthz`` answers 200; it raises with the server's output if the process exits first or
does not answer within ``timeout`` seconds.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-request, without any clean-up."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL with ``kill``), then SIGKILL if it has not exited after 15 s."""
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_server(
    cmd: Sequence[str], env: Mapping[str, str], log: Path, url: str, timeout: float = 60.0
) -> ServerProcess:
    """Start ``cmd`` (a server listening at ``url``) and wait until it answers ``/healthz``."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    server = ServerProcess(url, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.output()}")
        try:
            if httpx2.get(url + "/healthz", timeout=2).status_code == 200:
                return server
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop(kill=True)
            raise RuntimeError(
                f"the server did not answer /healthz within {timeout:.0f} s:\n{server.output()}"
            )
        time.sleep(0.1)
