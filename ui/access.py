"""Who may do what. Users (``settings.auth``) chat and rate; admins (``settings.admin_auth``) also train,
cancel, promote, roll back, set the A/B split and export.

Gradio's ``launch(auth=...)`` only decides who is signed in: every event with a
Python function is an HTTP endpoint, hidden or not, so each admin handler checks
``gr.Request.username`` itself (``Access.refusal``). Without any auth configured
(the local default, loopback only) everyone is allowed everything.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

ADMIN_ONLY = "This is an admin action: sign in as an admin (CLARIFY_ADMIN_AUTH) to do it."


def parse_auth(spec: str | None, flag: str = "--auth") -> list[tuple[str, str]]:
    """'alice:pw1,bob:pw2' -> [('alice', 'pw1'), ('bob', 'pw2')]; ValueError with a clear message."""
    if spec is None or not spec.strip():
        return []
    pairs = []
    for item in spec.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"{flag} must be comma-separated user:password pairs, e.g. alice:s3cret,bob:pa55")
        pairs.append((user.strip(), password))
    return pairs


@dataclass(frozen=True)
class Access:
    users: dict[str, str] = field(default_factory=dict)
    admins: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings) -> "Access":
        users = dict(parse_auth(settings.auth, "--auth"))
        admins = dict(parse_auth(settings.admin_auth, "--admin-auth"))
        both = sorted(set(users) & set(admins))
        if both:
            raise ValueError(f"{', '.join(both)} is in both --auth and --admin-auth; list each name once "
                             "(admins can chat and rate too).")
        return cls(users, admins)

    @property
    def configured(self) -> bool:
        return bool(self.users or self.admins)

    def check_password(self, username: str, password: str) -> bool:
        """For ``launch(auth=...)``: users and admins may sign in. Constant-time comparison."""
        expected = self.admins.get(username, self.users.get(username))
        if expected is None or not isinstance(password, str):
            hmac.compare_digest("x", "y")  # similar time for unknown names
            return False
        return hmac.compare_digest(expected.encode(), password.encode())

    def is_admin(self, username: str | None) -> bool:
        if not self.configured:
            return True  # local default: no sign-in at all, loopback only (enforced by `clarify serve`)
        return username is not None and username in self.admins

    def refusal(self, request) -> str | None:
        """None when the request may run an admin action, else the message to show."""
        username = getattr(request, "username", None) if request is not None else None
        if self.is_admin(username):
            return None
        who = f"{username} is" if username else "You are"
        return f"{who} not an admin. {ADMIN_ONLY}"
