"""Get a Label Studio personal access token (PAT) for the harness's admin user, the supported way.

Label Studio 1.23 disables legacy API tokens by default (`JWTSettings.legacy_api_tokens_enabled`
is False for a new organization, and `TokenAuthenticationPhaseout` answers 401 to them). The
supported flow is a personal access token: a long-lived JWT *refresh* token created with
`POST /api/token/` by a logged-in user, exchanged for short-lived *access* tokens with
`POST /api/token/refresh/` (`Authorization: Bearer <access>`). label-studio-sdk 2.x does the
exchange itself when given the PAT as `api_key`.

This script logs in as a browser would (session cookie and CSRF token from `/user/login/`),
then creates the PAT, saves it (mode 600) and prints it. Idempotent: a saved PAT that still
refreshes is printed as it is. A user may hold one PAT at a time (409 otherwise): when the
saved one is lost, the old ones are blacklisted through the server's own Django models and a
new one is created.

Run with the Label Studio venv's python (it has `requests`); harness.sh does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import label_studio  # the server's own package: run with the Label Studio venv's python
import requests

TIMEOUT = 30


def refreshes(base: str, pat: str) -> bool:
    response = requests.post(f"{base}/api/token/refresh/", json={"refresh": pat}, timeout=TIMEOUT)
    return response.status_code == 200 and "access" in response.json()


def login(base: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/user/login/", timeout=TIMEOUT).raise_for_status()
    csrf = session.cookies.get("csrftoken")
    if not csrf:
        sys.exit("token: no csrftoken cookie from /user/login/")
    response = session.post(
        f"{base}/user/login/",
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{base}/user/login/"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        sys.exit(f"token: login as {email} failed (HTTP {response.status_code})")
    return session


def create_pat(base: str, session: requests.Session) -> requests.Response:
    return session.post(
        f"{base}/api/token/",
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": f"{base}/"},
        timeout=TIMEOUT,
    )


def blacklist_outstanding(python: str, email: str) -> None:
    """Revoke the user's unexpired PATs (the saved copy was lost) with the server's own models."""
    code = (
        "from users.models import User\n"
        "from rest_framework_simplejwt.token_blacklist.models import (\n"
        "    BlacklistedToken, OutstandingToken)\n"
        f"user = User.objects.get(email={email!r})\n"
        "n = 0\n"
        "for token in OutstandingToken.objects.filter(user=user):\n"
        "    n += BlacklistedToken.objects.get_or_create(token=token)[1]\n"
        "print(f'blacklisted {n} token(s)')\n"
    )
    manage = Path(label_studio.__file__).parent / "manage.py"
    subprocess.run([python, str(manage), "shell", "-c", code], check=True, stdout=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    args = parser.parse_args()
    base = args.url.rstrip("/")

    if args.token_file.exists():
        saved = args.token_file.read_text().strip()
        if saved and refreshes(base, saved):
            print(saved)
            return
        print("token: saved token no longer refreshes; creating a new one", file=sys.stderr)

    session = login(base, args.email, args.password_file.read_text().strip())
    response = create_pat(base, session)
    if response.status_code == 409:
        blacklist_outstanding(sys.executable, args.email)
        response = create_pat(base, session)
    if response.status_code != 201:
        sys.exit(f"token: POST /api/token/ answered {response.status_code}: {response.text[:300]}")
    pat = response.json()["token"]
    if not refreshes(base, pat):
        sys.exit("token: the new token does not refresh")
    args.token_file.touch(mode=0o600)
    os.chmod(args.token_file, 0o600)
    args.token_file.write_text(pat + "\n")
    print(pat)


if __name__ == "__main__":
    main()
