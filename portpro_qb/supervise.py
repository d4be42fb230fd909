"""`make demo`'s process supervisor: web, Celery worker and Celery beat, kept running.

When a process dies it says which one, with its exit code and the last lines of its log, and
starts it again (at most `max_restarts` times in `window` seconds, with a growing pause), so
one crash does not take the whole demo down without a word. Ctrl-C (or SIGTERM) stops every
process cleanly: SIGTERM to each, then SIGKILL to what is left of its process group.

Usage: python -m portpro_qb.supervise demo   (what scripts/demo.sh runs)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


def tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64_000))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:]


@dataclass
class Program:
    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: deque = field(default_factory=deque)

    def start(self, env: dict) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            # A session of its own: Ctrl-C in the terminal reaches the supervisor only, which
            # then stops each program in order.
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float) -> None:
        if self.process is None:
            return
        if self.alive():
            # The main process only: Celery and gunicorn stop their own pool children, warmly.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of its group
        except ProcessLookupError:
            pass
        self.process.wait()


class Supervisor:
    def __init__(
        self,
        programs: list[Program],
        *,
        env: dict | None = None,
        max_restarts: int = 5,
        window: float = 600,
        grace: float = 20,
        backoff=lambda restarts: min(2 ** (restarts - 1), 30),
        say=None,
    ):
        self.programs = programs
        self.env = env if env is not None else dict(os.environ)
        self.max_restarts = max_restarts
        self.window = window
        self.grace = grace
        self.backoff = backoff
        self.say = say or (lambda text: print(text, flush=True))
        self.stopping = False

    def start(self, program: Program) -> None:
        program.start(self.env)

    def request_stop(self, *_args) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        for program in reversed(self.programs):
            program.stop(self.grace)

    def check(self) -> bool:
        """One look at every program: restart the dead ones; False when one is given up."""
        for program in self.programs:
            if program.process is None or program.alive():
                continue
            code = program.process.returncode
            ran = time.monotonic() - program.started_at
            self.say(f"[demo] {program.name} stopped (exit code {code}) after {ran:.0f}s.")
            lines = tail(program.log)
            if lines:
                self.say(f"[demo] last lines of {program.log}:")
                for line in lines:
                    self.say(f"    {line}")
            now = time.monotonic()
            while program.restarts and now - program.restarts[0] > self.window:
                program.restarts.popleft()
            if len(program.restarts) >= self.max_restarts:
                self.say(
                    f"[demo] {program.name} died {len(program.restarts) + 1} times within "
                    f"{self.window / 60:.0f} minutes; giving up. See {program.log}."
                )
                return False
            program.restarts.append(now)
            pause = self.backoff(len(program.restarts))
            self.say(
                f"[demo] restarting {program.name} in {pause}s "
                f"(restart {len(program.restarts)} of {self.max_restarts})."
            )
            time.sleep(pause)
            self.start(program)
        return True

    def run(self, *, interval: float = 0.5) -> int:
        """Supervise until asked to stop (0) or until a program keeps dying (1)."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not self.stopping:
                if not self.check():
                    return 1
                time.sleep(interval)
            self.say("[demo] stopping…")
            return 0
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _wait_healthy(url: str, program: Program, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not program.alive():
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


SECOND_SANDBOX_USER = "bayou-books@portpro.example"
BANNER = """
  portpro-qb is running at http://127.0.0.1:{port}
  Two trucking companies (tenants), each connected to its own QuickBooks company:
    PortPro Demo Trucking and {second}
    Finance user:  finance / finance     (member of both: switch with the company menu)
    Finance user:  bayou / bayou         ({second} only)
    Support user:  support / support     (Django admin, every company, QuickBooks ID area)
    Superuser:     admin / admin
  QuickBooks emulator: http://127.0.0.1:{port}/qbo-sandbox/
    QuickBooks sandbox users (emulator sign-in, password "sandbox"):
      books@portpro.example (PortPro Demo Books), bayou-books@portpro.example ({second} Books)
  Logs: {logs}/   Stop: Ctrl-C
"""


def demo() -> int:
    """Web first (the emulator lives in it), connect to a sandbox company, then worker + beat."""
    port = os.environ.get("PORT", "8000")
    logs = Path(os.environ.get("VAR_DIR", "var")) / "logs"
    bin_dir = Path(sys.executable).parent
    python = sys.executable
    web = Program(
        "web",
        [str(bin_dir / "gunicorn"), "portpro_qb.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--threads", "8", "--timeout", "120", "--graceful-timeout", "10",
         "--access-logfile", str(logs / "web-access.log")],
        logs / "web.log",
    )  # fmt: skip
    worker = Program(
        "worker",
        [str(bin_dir / "celery"), "-A", "portpro_qb", "worker", "-P", "prefork", "-c", "2",
         "-l", "INFO"],
        logs / "worker.log",
    )  # fmt: skip
    beat = Program(
        "beat",
        [str(bin_dir / "celery"), "-A", "portpro_qb", "beat", "-l", "INFO",
         "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="],
        logs / "beat.log",
    )  # fmt: skip
    supervisor = Supervisor([web, worker, beat])
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    supervisor.start(web)
    if not _wait_healthy(f"http://127.0.0.1:{port}/healthz", web) or supervisor.stopping:
        supervisor.say("[demo] the web server did not come up; last lines of its log:")
        for line in tail(web.log):
            supervisor.say(f"    {line}")
        supervisor.stop_all()
        return 1
    second = os.environ.get("DEMO_TENANT_2", "Bayou Drayage LLC")
    connects = [
        ["connect_sandbox", "--if-needed", "--demo-conflicts"],
        ["connect_sandbox", "--if-needed", "--company", second, "--name", f"{second} Books",
         "--sandbox-user", SECOND_SANDBOX_USER, "--map-charge-codes"],
    ]  # fmt: skip
    for args in connects:
        if subprocess.run([python, "manage.py", *args], check=False).returncode:
            supervisor.say("[demo] connecting to the built-in QuickBooks sandbox failed (above).")
            supervisor.stop_all()
            return 1
    supervisor.start(worker)
    supervisor.start(beat)
    supervisor.say(BANNER.format(port=port, logs=logs, second=second))
    return supervisor.run()


if __name__ == "__main__":
    if sys.argv[1:] != ["demo"]:
        sys.exit(__doc__)
    sys.exit(demo())
