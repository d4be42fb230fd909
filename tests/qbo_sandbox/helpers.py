"""Signing in to the emulator as its QuickBooks user, the way a browser does it."""

import re

SANDBOX_EMAIL = "books@example.com"
SANDBOX_PASSWORD = "pw-books"


def sign_in(session, base_url, *, email=SANDBOX_EMAIL, password=SANDBOX_PASSWORD, next_url=""):
    """Fill the emulator's sign-in form on a requests session (CSRF token from the form).
    Returns the answer unfollowed: 302 to `next` when it worked, 200 with the form when not."""
    page = session.get(base_url + "/signin", params={"next": next_url}, timeout=10)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        base_url + "/signin",
        data={
            "csrfmiddlewaretoken": csrf,
            "email": email,
            "password": password,
            "next": next_url,
        },
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
    )
