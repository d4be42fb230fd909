"""Embedded broker under concurrent publishers and consumers: stock kombu vs portpro_qb.broker.

Each round starts on an empty folder (so the queue and exchange files are created while every
process starts, as when `make demo` starts web, worker and beat at once), then P publishing
processes send N messages each while C consuming processes drain the queue. Counted per
transport over R rounds: messages lost, delivered twice, consumer errors, rounds with a loss,
and messages per second.

Usage: .venv/bin/python bench/broker_race.py [--rounds 10] [--producers 4] [--consumers 3]
       [--messages 500]. kombu's SQLAlchemy transport is measured too when SQLAlchemy is
       installed (it is not a dependency: see bench/README.md for why).
"""

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kombu import Connection  # noqa: E402


def connection(kind: str, root: Path) -> Connection:
    if kind == "sqlalchemy":
        return Connection(f"sqla+sqlite:///{root}/broker.sqlite3", connect_args={"timeout": 30})
    for name in ("queue", "control"):
        (root / name).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "control_folder": str(root / "control"),
        "polling_interval": 0.01,
    }
    transport = "portpro_qb.broker:Transport" if kind == "embedded" else None
    return Connection("filesystem://", transport=transport, transport_options=options)


def produce(kind, root, producer, count, errors):
    try:
        with connection(kind, Path(root)) as conn:
            queue = conn.SimpleQueue("race")
            for n in range(count):
                queue.put({"id": f"{producer}-{n}", "pad": "x" * 2000})
    except Exception as exc:  # noqa: BLE001 - counted
        errors.put(repr(exc)[:200])


def consume(kind, root, out, errors):
    got = []
    try:
        with connection(kind, Path(root)) as conn:
            queue = conn.SimpleQueue("race")
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 2.0:
                try:
                    message = queue.get(block=True, timeout=0.2)
                except queue.Empty:
                    continue
                except Exception as exc:  # noqa: BLE001 - counted, then go on like Celery would not
                    errors.put(repr(exc)[:200])
                    continue
                got.append(message.payload["id"])
                message.ack()
                idle_since = time.monotonic()
    except Exception as exc:  # noqa: BLE001 - a consumer that could not even start
        errors.put(repr(exc)[:200])
    Path(out).write_text(json.dumps(got))


def one_round(kind: str, producers: int, consumers: int, messages: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"broker-race-{kind}-", dir=Path.cwd() / "var"))
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    outs = [root / f"got{i}.json" for i in range(consumers)]
    readers = [
        context.Process(target=consume, args=(kind, str(root), str(out), errors)) for out in outs
    ]
    writers = [
        context.Process(target=produce, args=(kind, str(root), p, messages, errors))
        for p in range(producers)
    ]
    started = time.monotonic()
    for process in readers + writers:
        process.start()
    for process in writers + readers:
        process.join(timeout=300)
    elapsed = time.monotonic() - started - 2.0  # the consumers' idle wait at the end
    got = [i for out in outs if out.exists() for i in json.loads(out.read_text())]
    sent = {f"{p}-{n}" for p in range(producers) for n in range(messages)}
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    shutil.rmtree(root, ignore_errors=True)
    return {
        "lost": len(sent - set(got)),
        "duplicated": len(got) - len(set(got)),
        "errors": len(failures),
        "first_error": failures[0] if failures else "",
        "per_second": len(set(got)) / max(elapsed, 0.001),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=3)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    (Path.cwd() / "var").mkdir(exist_ok=True)
    kinds = ["filesystem", "embedded"]
    try:
        import sqlalchemy  # noqa: F401

        kinds.append("sqlalchemy")
    except ImportError:
        pass
    results = {}
    for kind in kinds:
        rounds = [
            one_round(kind, args.producers, args.consumers, args.messages)
            for _ in range(args.rounds)
        ]
        results[kind] = {
            "rounds": args.rounds,
            "messages_per_round": args.producers * args.messages,
            "lost": sum(r["lost"] for r in rounds),
            "duplicated": sum(r["duplicated"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds),
            "rounds_with_loss_or_error": sum(1 for r in rounds if r["lost"] or r["errors"]),
            "median_per_second": sorted(r["per_second"] for r in rounds)[len(rounds) // 2],
            "first_error": next((r["first_error"] for r in rounds if r["first_error"]), ""),
        }
        print(kind, json.dumps(results[kind]), flush=True)
    bad = results["embedded"]
    return 1 if bad["lost"] or bad["duplicated"] or bad["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
