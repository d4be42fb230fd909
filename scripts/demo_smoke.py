"""CI's proof of the embedded default: run the README's `make demo` and use it as a finance user.

Starts `make demo` on a free port in this checkout (SQLite, the filesystem broker, no Redis),
waits for /healthz, signs in as `finance`, waits until the worker and beat have pushed the
seeded invoices into the built-in emulator and the seeded problems show on Problem Sync, times
a disconnect and a reconnect through the consent page (signing in to the emulator as its
QuickBooks user `books@portpro.example` on the way; each must answer in under 2 s), checks
that syncing carries on until nothing is owed, then stops the demo with Ctrl-C and checks that
every process ended. Exit code 0 when all of it held.

Usage: .venv/bin/python scripts/demo_smoke.py
"""

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SERVE_WITHIN = 90  # seconds from `make demo` to /healthz (venv ready, as after `make venv`)
SYNC_WITHIN = 180
ACTION_LIMIT = 2.0  # seconds for a disconnect or a reconnect to answer
OWED = {"pending", "in_flight", "retry_wait"}
# The emulator's QuickBooks user that connect_sandbox creates for the demo (README).
SANDBOX_USER = ("books@portpro.example", "sandbox")
SECOND_TENANT = "Bayou Drayage LLC"  # scripts/demo.sh (DEMO_TENANT_2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(text: str) -> None:
    print(f"[smoke] {text}", flush=True)


class Failed(Exception):
    pass


def wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise Failed(f"{what} not within {timeout:.0f}s")


def manage(env, *args) -> str:
    return subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def emulator_count(env, entity: str) -> int:
    code = (
        "from qbo_sandbox.models import Entity as E;"
        f"print(E.objects.filter(entity_type='{entity}', deleted=False).count())"
    )
    return int(manage(env, "shell", "-v", "0", "-c", code).strip() or 0)


def post(session, base, path, data=None, **kwargs):
    data = dict(data or {}, csrfmiddlewaretoken=session.cookies.get("csrftoken", ""))
    return session.post(base + path, data=data, headers={"Referer": base + path}, **kwargs)


def login(session, base, username, password, path="/accounts/login/"):
    session.get(base + path, timeout=10)
    response = post(session, base, path, {"username": username, "password": password})
    if "sessionid" not in session.cookies:
        raise Failed(f"could not sign in as {username} (HTTP {response.status_code})")


def sandbox_signin(session, page) -> requests.Response:
    """Fill the emulator's sign-in form `page` (where the consent page sent us) as the demo's
    QuickBooks user, with the form's CSRF token, as a browser would."""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    next_url = re.search(r'name="next" value="([^"]*)"', page.text)
    if not token or not next_url:
        raise Failed(f"no emulator sign-in form at {page.url}")
    email, password = SANDBOX_USER
    answer = session.post(
        page.url,
        data={
            "csrfmiddlewaretoken": token.group(1),
            "email": email,
            "password": password,
            "next": html.unescape(next_url.group(1)),
        },
        headers={"Referer": page.url},
        timeout=30,
    )
    if 'name="password"' in answer.text:
        raise Failed(f"could not sign in to the emulator as {email} (HTTP {answer.status_code})")
    return answer


def check(base: str, env: dict) -> dict:
    figures = {}
    session = requests.Session()
    login(session, base, "finance", "finance")
    say("signed in as finance")

    def synced():
        status = json.loads(manage(env, "sync_status", "--json"))
        invoices, bills = status.get("invoice", {}), status.get("bill", {})
        remote = emulator_count(env, "Invoice")
        ready = invoices.get("synced", 0) >= 100 and remote >= invoices.get("synced", 0)
        ready = ready and invoices.get("problem", 0) > 0 and not invoices.get("pending")
        # Payables: carrier bills and settlements too, and the carrier whose name a QuickBooks
        # customer holds stops with its bills.
        ready = ready and bills.get("synced", 0) >= 30 and not bills.get("pending")
        ready = ready and status.get("vendor", {}).get("problem", 0) == 1
        return (status, remote, emulator_count(env, "Bill")) if ready else None

    started = time.monotonic()
    status, remote, bills = wait(synced, SYNC_WITHIN, "seeded records synced into the emulator", 3)
    figures["sync_seconds"] = round(time.monotonic() - started, 1)
    figures["status"] = status
    figures["emulator_invoices"] = remote
    figures["emulator_bills"] = bills
    if bills < status["bill"]["synced"]:
        raise Failed(f"{status['bill']['synced']} bills synced but {bills} in the emulator")
    say(
        f"synced in {figures['sync_seconds']}s: {status}, {remote} invoices and {bills} bills "
        "in the emulator"
    )

    page = session.get(base + "/sync/problems/", timeout=10).text
    reasons = ["has no QuickBooks item", "email"]
    missing = [r for r in reasons if r not in page]
    vendors = session.get(base + "/sync/problems/?type=vendor", timeout=10).text
    if "has this vendor&#x27;s name" not in vendors and "has this vendor's name" not in vendors:
        missing.append("the vendor name taken by a customer")
    if missing:
        raise Failed(f"Problem Sync does not show the seeded problems {missing}")
    say("Problem Sync shows the seeded problems")

    started = time.monotonic()
    response = post(session, base, "/quickbooks/disconnect/", allow_redirects=False, timeout=30)
    figures["disconnect_seconds"] = round(time.monotonic() - started, 2)
    if response.status_code != 302:
        raise Failed(f"disconnect answered {response.status_code}")
    started = time.monotonic()
    response = post(session, base, "/quickbooks/connect/", allow_redirects=False, timeout=30)
    consent_url = response.headers.get("Location", "")
    consent = session.get(consent_url, timeout=30)
    if 'name="password"' in consent.text:
        # The emulator's consent page asks for a QuickBooks (sandbox) user, like Intuit's:
        # the TMS login does not count there.
        sandbox_signin(session, consent)
        consent = session.get(consent_url, timeout=30)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', consent.text))
    realm = re.search(r'name="realm_id" value="(\d+)"', consent.text)
    if not realm:
        raise Failed("the consent page offers no company")
    form = {k: fields[k] for k in ("client_id", "redirect_uri", "state", "scope", "response_type")}
    form.update(realm_id=realm.group(1), action="connect")
    figures["consent_page_seconds"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    answer = session.post(
        consent.url,
        data={**form, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
        headers={"Referer": consent.url},
        allow_redirects=False,
        timeout=30,
    )
    callback = session.get(answer.headers["Location"], allow_redirects=False, timeout=30)
    figures["reconnect_seconds"] = round(time.monotonic() - started, 2)
    settings_page = session.get(base + "/finance/quickbooks/", timeout=10).text
    if callback.status_code != 302 or "Connected to QuickBooks company" not in settings_page:
        raise Failed("reconnecting through the consent page did not connect")
    say(f"disconnect {figures['disconnect_seconds']}s, reconnect {figures['reconnect_seconds']}s")
    slow = {k: v for k, v in figures.items() if k.endswith("connect_seconds") and v > ACTION_LIMIT}
    if slow:
        raise Failed(f"slower than {ACTION_LIMIT}s: {slow}")

    def settled():
        status = json.loads(manage(env, "sync_status", "--json"))
        owed = sum(n for by in status.values() for s, n in by.items() if s in OWED)
        return status if owed == 0 else None

    figures["settled"] = wait(settled, SYNC_WITHIN, "everything settled after the reconnect", 3)
    say(f"after the reconnect nothing is left owed: {figures['settled']}")
    figures["second_tenant"] = check_second_tenant(base, env, session)
    return figures


def check_second_tenant(base: str, env: dict, finance) -> dict:
    """The second trucking company syncs to its own QuickBooks company; its own login sees it
    alone; the finance user of both switches to it with the menu."""

    def synced():
        status = json.loads(manage(env, "sync_status", "--company", SECOND_TENANT, "--json"))
        invoices = status.get("invoice", {})
        owed = sum(n for by in status.values() for s, n in by.items() if s in OWED)
        return status if invoices.get("synced", 0) >= 50 and owed == 0 else None

    status = wait(synced, SYNC_WITHIN, f"{SECOND_TENANT}'s invoices synced", 3)
    bayou = requests.Session()
    login(bayou, base, "bayou", "bayou")
    page = bayou.get(base + "/sync/problems/", timeout=10).text
    if SECOND_TENANT not in page or "PortPro Demo Trucking" in page:
        raise Failed(f"the bayou login does not see {SECOND_TENANT} alone")
    menu = finance.get(base + "/sync/problems/", timeout=10).text
    if 'data-testid="tenant-menu"' not in menu or SECOND_TENANT not in menu:
        raise Failed("the finance user of both companies has no company menu")
    say(f"{SECOND_TENANT}: {status}; its login sees it alone; finance can switch to it")
    return status


def demo_processes(var_dir: Path) -> list[int]:
    """Processes started for this demo (the supervisor gives each a session of its own)."""
    marker = f"VAR_DIR={var_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def start_demo(var_dir: Path, port: int):
    """`make demo` in the background, on its own var folder (fresh each time) and port."""
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    log_path = var_dir / "make-demo.log"
    env = dict(os.environ, PORT=str(port), VAR_DIR=str(var_dir))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)  # the embedded defaults, exactly as a new user gets them
    env.update(QBO_SANDBOX_ENABLED="1", QBO_LOCAL_BASE_URL=f"http://127.0.0.1:{port}/qbo-sandbox")
    say(f"make demo on port {port} (log: {log_path})")
    with open(log_path, "w") as log:
        demo = subprocess.Popen(
            ["make", "demo", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    demo.started = time.monotonic()
    return demo, log_path, env


def wait_serving(demo, base: str, log_path: Path) -> float:
    def serving():
        if demo.poll() is not None:
            raise Failed(f"make demo exited with {demo.returncode}")
        try:
            return requests.get(base + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait(serving, SERVE_WITHIN, "/healthz answering", 0.5)
    wait(lambda: "Stop: Ctrl-C" in log_path.read_text(), 60, "the banner", 0.5)
    elapsed = round(time.monotonic() - demo.started, 1)
    say(f"serving after {elapsed}s")
    return elapsed


def stop_demo(demo, var_dir: Path) -> list[int]:
    """Ctrl-C as in the terminal; returns the processes still running afterwards (killed)."""
    os.killpg(demo.pid, signal.SIGINT)
    try:
        demo.wait(timeout=60)
    except subprocess.TimeoutExpired:
        say("FAILED: the demo did not stop within 60 s of Ctrl-C")
        os.killpg(demo.pid, signal.SIGKILL)
    leftovers = demo_processes(var_dir)
    if leftovers:
        say(f"FAILED: processes left running after Ctrl-C: {leftovers}")
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    return leftovers


def print_logs(var_dir: Path, log_path: Path) -> None:
    print(log_path.read_text()[-4000:])
    for name in ("web.log", "worker.log", "beat.log"):
        path = var_dir / "logs" / name
        if path.exists():
            print(f"--- {name} (tail)\n" + "\n".join(path.read_text().splitlines()[-25:]))


def main() -> int:
    port = free_port()
    var_dir = ROOT / "var" / "demo-smoke"
    demo, log_path, env = start_demo(var_dir, port)
    base = f"http://127.0.0.1:{port}"
    code = 1
    try:
        wait_serving(demo, base, log_path)
        figures = check(base, env)
        code = 0
        say(f"figures: {json.dumps(figures)}")
    except (Failed, requests.RequestException, subprocess.CalledProcessError) as exc:
        say(f"FAILED: {exc}")
    finally:
        if stop_demo(demo, var_dir):
            code = 1
        if code:
            print_logs(var_dir, log_path)
    return code


if __name__ == "__main__":
    sys.exit(main())
