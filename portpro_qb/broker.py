"""The embedded Celery broker: kombu's filesystem transport, made safe for several processes.

Stock kombu (5.5) creates a message file under its final name and then writes it, so a
consumer can pick up an empty or half-written file: `JSONDecodeError` in the worker's consumer
loop, the message gone (bench/broker_race.py measures it: lost messages with four producers
and three consumers). It also claims a file by moving it to the system temp folder, which is a
copy, not an atomic rename, when that folder is on another file system.

Here both ends use rename(2), atomic on one file system: a message is written under a
temporary name in `<broker>/tmp` and renamed into the queue folder only when complete; a
consumer claims a message by renaming it into `<broker>/claimed`, which exactly one consumer
can do. Everything else (exchange tables, fanout, polling) is kombu's.
"""

import fcntl
import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _queue_bind(self, exchange, routing_key, pattern, queue):
        """kombu truncates the exchange table and then writes it, so a process reading it at
        that moment (every publish does) sees an empty file. Replace it whole instead, under
        a lock of its own so two processes declaring queues at once keep both bindings."""
        self.control_folder.mkdir(parents=True, exist_ok=True)
        table = self.control_folder / f"{exchange}.exchange"
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with open(self.control_folder / f"{exchange}.lock", "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            bindings = self.get_table(exchange)
            if binding in bindings:
                return
            staging = self._broker_folder("tmp") / f"{exchange}.{uuid.uuid4()}.exchange"
            staging.write_bytes(str_to_bytes(dumps([binding, *bindings])))
            os.replace(staging, table)

    def _broker_folder(self, name: str) -> Path:
        # Beside the queue folder, so a rename never crosses file systems.
        folder = Path(self.data_folder_in).parent / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000)):015d}_{uuid.uuid4()}.{queue}.msg"
        staging = self._broker_folder("tmp") / name
        try:
            with open(staging, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.rename(staging, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to the queue folder") from exc

    def _get(self, queue):
        suffix = f".{queue}.msg"
        claimed_folder = self._broker_folder("claimed")
        for name in sorted(os.listdir(self.data_folder_in)):
            if not name.endswith(suffix):
                continue
            claimed = claimed_folder / name
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another consumer took it first
            try:
                message = loads(bytes_to_str(claimed.read_bytes()))
            except ValueError:
                # Unreadable (a crash of the machine mid-write): keep it aside, never stop the
                # worker's consumer over one file.
                logger.error(
                    "broker message %s is unreadable; moved to %s/bad", name, claimed_folder.parent
                )
                os.rename(claimed, self._broker_folder("bad") / name)
                continue
            claimed.unlink()
            return message
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict[str, object]:
        # Folders, not a host: without this kombu warns "No hostname was supplied" on every
        # connection the web process opens.
        return {}
