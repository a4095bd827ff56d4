"""`kodad serve` as a child process, for tests that signal or kill the service."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path


class KodadProcess:
    """Starts `python -m kodad serve` on a free loopback port; `address` once it serves."""

    def __init__(self, data_dir: Path, *extra: str, python: str = sys.executable) -> None:
        self.process = subprocess.Popen(
            [
                python,
                "-m",
                "kodad",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        self.log: list[str] = []
        self._logged = threading.Condition()
        for line in self.process.stderr:
            self.log.append(line)
            if match := re.search(r"serving on (\S+)", line):
                self.address = match.group(1)
                break
        else:
            raise RuntimeError(f"kodad exited with {self.process.wait()}: {''.join(self.log)}")
        # Keep reading its log so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._logged:
                self.log.append(line)
                self._logged.notify_all()

    def wait_for_log(self, text: str, timeout: float = 30) -> str:
        """Blocks until a log line containing `text` was written; returns it."""

        def found() -> str | None:
            return next((line for line in self.log if text in line), None)

        with self._logged:
            if not self._logged.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no log line with {text!r}: {''.join(self.log)}")
        line = found()
        assert line is not None
        return line

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
