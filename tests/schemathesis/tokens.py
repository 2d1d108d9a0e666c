"""Prints an access token from devtenant (the emulated Entra tenant) for scripts/schemathesis.sh.

    tokens.py approver ISSUER   # Ada (app role Approver) through the desktop client's
                                # authorization code flow with PKCE (login_hint signs in at once)
    tokens.py extension ISSUER  # Entra's authentication events app, client credentials

Client ids, secret and scopes are devtenant's documented defaults (guestlist_devtenant::defaults).
Standard library only.
"""
import base64
import hashlib
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

DESKTOP_CLIENT_ID = "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11"
API_SCOPE_FULL = "api://guestlist-approvals/Approvals.ReadWrite"
AUTH_EVENTS_CLIENT_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
AUTH_EVENTS_CLIENT_SECRET = "devtenant-auth-events-secret"
ADA_UPN = "ada@contoso.onmicrosoft.com"
REDIRECT_URI = "http://127.0.0.1:9/callback"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def post_token(issuer_base, form):
    url = issuer_base.rsplit("/v2.0", 1)[0] + "/oauth2/v2.0/token"
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
        return json.load(r)["access_token"]


def approver(issuer):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "client_id": DESKTOP_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid profile offline_access {API_SCOPE_FULL}",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        "login_hint": ADA_UPN,
    })
    authorize = issuer.rsplit("/v2.0", 1)[0] + "/oauth2/v2.0/authorize?" + query
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(authorize, timeout=10)
        sys.exit("devtenant did not redirect the authorize request")
    except urllib.error.HTTPError as e:
        location = e.headers.get("Location", "")
    code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("code", [""])[0]
    if not code:
        sys.exit(f"no code in the redirect: {location}")
    return post_token(issuer, {
        "grant_type": "authorization_code",
        "client_id": DESKTOP_CLIENT_ID,
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "scope": API_SCOPE_FULL,
    })


def extension(issuer):
    return post_token(issuer, {
        "grant_type": "client_credentials",
        "client_id": AUTH_EVENTS_CLIENT_ID,
        "client_secret": AUTH_EVENTS_CLIENT_SECRET,
        "scope": "api://guestlist-approvals/.default",
    })


if __name__ == "__main__":
    kind, issuer = sys.argv[1], sys.argv[2]
    print({"approver": approver, "extension": extension}[kind](issuer))
