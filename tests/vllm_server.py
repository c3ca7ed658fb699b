"""A real vLLM OpenAI-compatible server on 127.0.0.1 for tests: the command of ``kgrag serve-llm``, started
as a subprocess on a free port, waited for until ``/v1/models`` answers, stopped (its process group) on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from kgrag.commands.llm import server_command, server_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMTestServer:
    def __init__(self, settings, model_dir: str, log_path: Path, *, ready_timeout_s: float = 600.0) -> None:
        self.port = free_port()
        self.command = server_command(settings, model_dir, port=self.port)
        self.env = server_env(settings)
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "VLLMTestServer":
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.process.returncode}; log: {self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.__exit__()
        raise RuntimeError(f"vLLM server not ready after {self.ready_timeout_s:.0f} s; log: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def __exit__(self, *exc) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
