"""Celery beat, played by a thread of the bench: named sync tasks sent every so many seconds
(each at once, then on its interval). One class for every section's schedule."""

from __future__ import annotations

import threading
import time


class BeatThread:
    def __init__(self, jobs: list[tuple[str, float]]):
        self.jobs = jobs
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from sync import tasks

        due = dict.fromkeys((name for name, _ in self.jobs), 0.0)
        while not self.stop_event.is_set():
            now = time.monotonic()
            for name, every in self.jobs:
                if now >= due[name]:
                    getattr(tasks, name).delay()
                    due[name] = now + every
            self.stop_event.wait(min(0.2, *(every for _, every in self.jobs)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()


def sweep_every(seconds: float) -> BeatThread:
    """Beat's sweep alone, at the bench's pace."""
    return BeatThread([("sweep_due", seconds)])


def product_beat() -> BeatThread:
    """Beat as the product schedules it: the sweep every second (the bench's pace), stored
    webhooks every 10 s (sync 0010), the pull tick every SYNC_PULL_SECONDS."""
    from django.conf import settings

    return BeatThread(
        [
            ("sweep_due", 1.0),
            ("process_webhooks", 10.0),
            ("pull_changes", float(settings.SYNC_PULL_SECONDS)),
        ]
    )
