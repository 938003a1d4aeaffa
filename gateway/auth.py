"""Bearer tokens for the gateway's `/api/...` routes, from TIMEX_API_TOKENS.

The value is either `user:token,user2:token2` (commas or newlines between entries: a Kubernetes Secret
key holding the lines works as is) or the path of a file with one `user:token` per line (blank lines and `#`
comments skipped): a value that names an existing file is read as one. A user may have several
tokens (rotation); a token belongs to one user. Errors name the entry and the user, never the token.
Only SHA-256 digests of the tokens are kept, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway.inputs import ApiError

USER = web.RequestKey("user", str)  # the authenticated user of a request (absent when auth is off)
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_TOKEN_CHARS = 16  # shorter tokens are guessable; `make up` makes 43-character ones


class TokenConfigError(ValueError):
    """TIMEX_API_TOKENS cannot be used; the message never contains a token."""


def parse_tokens(spec: str) -> list[tuple[str, str]]:
    """TIMEX_API_TOKENS → [(user, token), ...]; raises TokenConfigError naming the bad entry."""
    spec = spec.strip()
    if os.path.isfile(spec):
        try:
            text = Path(spec).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenConfigError(f"TIMEX_API_TOKENS: the token file cannot be read ({type(exc).__name__})") from None
        entries = [(f"line {n}", line.strip()) for n, line in enumerate(text.splitlines(), 1)
                   if line.strip() and not line.strip().startswith("#")]
    elif ":" in spec:
        entries = [(f"entry {n}", item.strip()) for n, item in enumerate(re.split(r"[,\n]", spec), 1)]
    else:  # a missing file, or a bare token without its user: do not echo it
        raise TokenConfigError("TIMEX_API_TOKENS is neither `user:token,...` nor the path of a readable file "
                               "(value not shown: it may hold a token)")
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for where, entry in entries:
        user, sep, token = entry.partition(":")
        user, token = user.strip(), token.strip()
        if not sep or not user or not token:
            raise TokenConfigError(f"TIMEX_API_TOKENS {where}: expected user:token")
        if not USER_NAME.fullmatch(user):
            raise TokenConfigError(f"TIMEX_API_TOKENS {where}: the user name must be 1-64 letters, digits or ._@- "
                                   f"(starting with a letter or digit)")
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise TokenConfigError(f"TIMEX_API_TOKENS {where} (user {user}): the token must be at least "
                                   f"{MIN_TOKEN_CHARS} characters without spaces")
        if token in seen and seen[token] != where:
            raise TokenConfigError(f"TIMEX_API_TOKENS {where} (user {user}): the same token as {seen[token]}")
        seen[token] = where
        pairs.append((user, token))
    if not pairs:
        raise TokenConfigError("TIMEX_API_TOKENS names a file without any user:token line")
    return pairs


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenTable:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._digests = [(_digest(token), user) for user, token in pairs]

    def user_for(self, token: str) -> str | None:
        """The token's user, or None; compares with every entry (no early exit) in constant time."""
        presented = _digest(token)
        found = None
        for digest, user in self._digests:
            if hmac.compare_digest(presented, digest):
                found = user
        return found

    def authenticate(self, authorization: str | None) -> str:
        """`Authorization` header → user, or a 401 ApiError (with WWW-Authenticate) in plain words."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if not authorization:
            raise _unauthorized("this gateway needs an API token: send the header `Authorization: Bearer <token>`")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be `Bearer <token>`")
        user = self.user_for(token.strip())
        if user is None:
            raise _unauthorized("the API token is not valid", 'Bearer error="invalid_token"')
        return user


def _unauthorized(message: str, challenge: str = 'Bearer realm="timex-stream"') -> ApiError:
    return ApiError(401, message, "Authorization", headers={"WWW-Authenticate": challenge})


def protected(request: web.Request) -> bool:
    """Every `/api/...` route needs a token; /health, /metrics and /openapi.json stay open."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return canonical.startswith("/api/") or request.path.startswith("/api")


def bearer_auth(table: TokenTable | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
        if table is not None and protected(request):
            request[USER] = table.authenticate(request.headers.get("Authorization"))
        return await handler(request)

    return authenticate


def user_of(request: web.Request) -> str | None:
    """The authenticated user; None when the gateway runs without tokens (every request is everyone's)."""
    return request.get(USER)
