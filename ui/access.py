"""Who may do what. Users (``settings.auth``) chat and rate; admins (``settings.admin_auth``) also train,
cancel, promote, roll back, set the A/B split and export.

Gradio's ``launch(auth=...)`` only decides who is signed in: every event with a
Python function is an HTTP endpoint, hidden or not. So the admin handlers are
marked ``@admin_only`` and ``AdminGuard``, an ASGI middleware in front of Gradio's
event routes, answers 401 (not signed in) or 403 (not an admin) before such an
event is even queued; each admin handler also checks ``gr.Request.username``
itself (``Access.refusal``). Without any auth configured (the local default,
loopback only) everyone is allowed everything.
"""

from __future__ import annotations

import hmac
import json
import re
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


def admin_only(handler):
    """Mark an event handler as an admin action: AdminGuard refuses HTTP calls to it from anyone but an admin."""
    handler.admin_only = True
    return handler


# Gradio's routes that run an event: the browser's queue/join, and the API routes (run, api, call, call/v2).
_EVENT_ROUTE = re.compile(r"/gradio_api/(?:queue/join|(?:run|api|call|call/v2)/(?P<name>[^/]+))/?$")


class AdminGuard:
    """ASGI middleware in front of Gradio's event routes (installed by ``ui.app.launch_kwargs``).

    With auth configured, a caller who is not signed in gets 401, and a call to an ``@admin_only`` event from
    anyone but an admin 403, before Gradio queues it, whichever route and fn_index or api_name it names. A call
    naming an event that does not exist gets 400/404 (Gradio itself answers 500 and logs a traceback), one with
    the wrong number of inputs 422. Everything else passes through unchanged (the body is replayed).
    """

    def __init__(self, app, access: Access):
        self.app = app
        self.access = access

    async def __call__(self, scope, receive, send):
        match = _EVENT_ROUTE.search(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = self._refusal(scope, match.group("name"), body)
        if refusal is not None:
            from starlette.responses import JSONResponse

            status, detail = refusal
            return await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope, api_name: str | None, body: bytes) -> tuple[int, str] | None:
        app = scope["app"]
        user = _signed_in_user(app, scope) if self.access.configured else None
        if self.access.configured and user is None:
            return 401, "Sign in first."  # as Gradio's own login check would, before saying anything about events
        try:
            payload = json.loads(body)
        except ValueError:
            return None  # Gradio answers 422 itself
        if not isinstance(payload, dict):
            return None
        fns = app.get_blocks().fns
        named = []  # what the route could run: by api_name and/or by fn_index (each route prefers one of them)
        if api_name is not None:
            fn = next((f for f in fns.values() if f.api_name == api_name), None)
            if fn is None:
                return 404, f"There is no event named {api_name!r}."
            named.append(fn)
        fn_index = payload.get("fn_index")
        if fn_index is not None or api_name is None:
            if isinstance(fn_index, bool) or not isinstance(fn_index, int) or fn_index not in fns:
                return 400, f"There is no event with fn_index {fn_index!r}."
            fn = fns[fn_index]
            named.append(fn)
            data = payload.get("data")
            if api_name is None and isinstance(data, list) and len(data) != len(fn.inputs):
                return 422, f"This event takes {len(fn.inputs)} input value(s), got {len(data)}."
        if any(getattr(f.fn, "admin_only", False) for f in named) and not self.access.is_admin(user):
            return 403, f"{user} is not an admin. {ADMIN_ONLY}"
        return None


def _signed_in_user(app, scope) -> str | None:
    """The name Gradio's own login check would see for this request (its session cookie -> app.tokens)."""
    from starlette.requests import HTTPConnection

    cookies = HTTPConnection(scope).cookies
    token = (cookies.get(f"access-token-{app.cookie_id}")
             or cookies.get(f"access-token-unsecure-{app.cookie_id}"))
    return app.tokens.get(token) if token else None
