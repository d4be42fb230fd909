"""`make demo`'s supervisor: a dead process is named, shown and restarted, within bounds."""

import time

from portpro_qb.supervise import Program, Supervisor


def supervisor_for(tmp_path, command, *, max_restarts=2):
    program = Program("worker", command, tmp_path / "worker.log")
    said = []
    supervisor = Supervisor(
        [program], max_restarts=max_restarts, backoff=lambda n: 0, say=said.append
    )
    return supervisor, program, said


def wait_dead(program, timeout=10):
    deadline = time.monotonic() + timeout
    while program.alive() and time.monotonic() < deadline:
        time.sleep(0.02)


def wait_gone(pid, timeout=5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    return True  # dead, waiting for init to reap it
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_it_names_the_dead_process_with_its_last_log_lines_and_restarts_it(tmp_path):
    supervisor, program, said = supervisor_for(
        tmp_path, ["sh", "-c", "echo 'Unrecoverable error: JSONDecodeError'; exit 3"]
    )
    supervisor.start(program)
    first = program.process.pid
    wait_dead(program)

    assert supervisor.check() is True

    text = "\n".join(said)
    assert "worker stopped (exit code 3)" in text
    assert "Unrecoverable error: JSONDecodeError" in text  # the log tail, not a bare "Error 1"
    assert program.process.pid != first  # started again


def test_it_gives_up_on_a_process_that_keeps_dying(tmp_path):
    supervisor, program, said = supervisor_for(tmp_path, ["sh", "-c", "exit 1"], max_restarts=2)
    supervisor.start(program)
    outcomes = []
    for _ in range(3):
        wait_dead(program)
        outcomes.append(supervisor.check())

    assert outcomes == [True, True, False]
    assert "giving up" in said[-1]


def test_stopping_ends_every_process_and_its_children(tmp_path):
    supervisor, program, _ = supervisor_for(
        tmp_path, ["sh", "-c", "sleep 60 & echo $! > child.pid; wait"]
    )
    program.command[-1] = program.command[-1].replace("child.pid", str(tmp_path / "child.pid"))
    supervisor.start(program)
    deadline = time.monotonic() + 10
    while not (tmp_path / "child.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int((tmp_path / "child.pid").read_text())

    supervisor.stop_all()

    assert not program.alive()
    # The whole process group got SIGTERM (celery's pool, gunicorn's workers), not only sh.
    assert wait_gone(child)


def test_a_stop_request_ends_the_run_loop_cleanly(tmp_path):
    supervisor, program, _ = supervisor_for(tmp_path, ["sleep", "60"])
    supervisor.start(program)
    supervisor.request_stop()  # what its SIGINT/SIGTERM handler does

    assert supervisor.run(interval=0.01) == 0
    assert not program.alive()
