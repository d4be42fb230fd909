import json
from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command

from qbo_sandbox import services
from qbo_sandbox.models import SandboxApp, SandboxCompany, SandboxUser

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out = StringIO()
    call_command("qbo_sandbox", *args, stdout=out)
    return out.getvalue().strip()


def test_create_company_app_and_issue_tokens():
    realm = run("create-company", "--name", "Cmd Co")
    assert realm.isdigit() and len(realm) == 16
    app = json.loads(
        run(
            "create-app",
            "--redirect-uri",
            "http://a/cb",
            "--redirect-uri",
            "http://b/cb",
            "--webhook-url",
            "http://h/wh",
            "--webhook-format",
            "legacy",
            "--json",
        )  # fmt: skip
    )
    assert app["redirect_uris"] == ["http://a/cb", "http://b/cb"]
    assert SandboxApp.objects.get(client_id=app["client_id"]).webhook_format == "legacy"
    pair = json.loads(
        run("issue-tokens", "--client-id", app["client_id"], "--realm", realm, "--json")
    )
    assert set(pair) >= {"access_token", "refresh_token", "realm_id", "expires_in"}
    assert pair["realm_id"] == realm


def test_faults_set_and_clear():
    company = services.company_create(name="F")
    state = json.loads(
        run(
            "faults",
            "--realm",
            company.realm_id,
            "--latency-ms",
            "50",
            "--error-rate",
            "0.25",
            "--throttle-per-min",
            "100",
            "--commit-then-timeout-rate",
            "0.1",
            "--ignore-requestid",
            "--json",
        )  # fmt: skip
    )
    assert (state["latency_ms"], state["error_rate"], state["per_minute"]) == (50, 0.25, 100)
    assert state["ignore_requestid"] is True
    state = json.loads(run("faults", "--realm", company.realm_id, "--expire-tokens", "--json"))
    assert state["tokens_expired_before"] is not None
    state = json.loads(run("faults", "--realm", company.realm_id, "--clear", "--json"))
    assert (state["latency_ms"], state["ignore_requestid"], state["per_minute"]) == (0, False, 500)


def test_reset_removes_everything():
    services.company_create(name="Gone")
    assert run("reset") == "sandbox reset"
    assert SandboxCompany.objects.count() == 0


def test_it_creates_a_user_once_and_updates_its_password_when_run_again():
    # Scripts re-run create-user: one user, the latest password, the access it was given.
    company = services.company_create(name="Users Co")
    run(
        "create-user",
        "--email",
        "Ann@Example.com",
        "--password",
        "one",
        "--realm",
        company.realm_id,
    )
    again = json.loads(
        run("create-user", "--email", "ann@example.com", "--password", "two", "--json")
    )
    user = SandboxUser.objects.get()
    assert check_password("two", user.password) and not check_password("one", user.password)
    assert again == {
        "email": "ann@example.com",
        "name": "",
        "all_companies": False,
        "realm_ids": [company.realm_id],
    }


def test_it_gives_a_user_created_without_realms_every_company():
    # A developer's user: it sees companies created after it too.
    run("create-user", "--email", "dev@example.com", "--password", "pw")
    later = services.company_create(name="Later Co")
    user = SandboxUser.objects.get()
    assert list(services.user_companies(user=user)) == [later]


def test_it_refuses_an_unknown_realm_for_a_user():
    # A typo in --realm must not create a user with no company and say nothing.
    with pytest.raises(CommandError, match="no sandbox company with realm id 123"):
        run("create-user", "--email", "x@example.com", "--password", "pw", "--realm", "123")
    assert not SandboxUser.objects.exists()
