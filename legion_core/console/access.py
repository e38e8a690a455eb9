"""Who may command through the console (docs/console.md, "Who may do what"): a token set at launch, never a
default. Viewers read and may press the e-stop; previewing, executing, cancelling and re-arming need it."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

TOKEN_ENV = "LEGION_CONSOLE_TOKEN"
MIN_TOKEN_CHARS = 16
TOKEN_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
#: Actions that need the token. The e-stop is not among them: stopping is never gated.
GATED_ACTIONS = frozenset({"preview", "execute", "cancel", "rearm"})
ACTIONS = GATED_ACTIONS | {"estop"}


class TokenError(ValueError):
    """The token setting is unusable; the message names the setting and the fix."""


def load_token(token_file: str = "", environ: dict | None = None) -> str | None:
    """The operator token from `token_file`, else the LEGION_CONSOLE_TOKEN environment variable; None = a
    read-only console. A token shorter than MIN_TOKEN_CHARS is refused (it would be guessable)."""
    env = os.environ if environ is None else environ
    if token_file:
        path = Path(token_file).expanduser()
        try:
            token, source = path.read_text().strip(), f"token_file {path}"
        except OSError as e:
            raise TokenError(f"token_file {path}: cannot read it ({e.strerror}); {TOKEN_HINT}") from None
    elif env.get(TOKEN_ENV):
        token, source = env[TOKEN_ENV].strip(), f"environment variable {TOKEN_ENV}"
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenError(f"{source}: the token has {len(token)} characters, at least {MIN_TOKEN_CHARS} are "
                         f"needed; {TOKEN_HINT}")  # fmt: skip
    if any(c.isspace() for c in token):
        raise TokenError(f"{source}: the token contains whitespace; {TOKEN_HINT}")
    return token


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; no token configured matches nothing (a read-only console)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), str(given).encode())


def bearer(header_value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header_value:
        return None
    scheme, _, value = header_value.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def may(action: str, authed: bool) -> bool:
    """Whether an action may run for a client that did (`authed`) or did not present the token."""
    if action not in ACTIONS:
        raise ValueError(f"unknown console action {action!r}; one of {sorted(ACTIONS)}")
    return authed or action not in GATED_ACTIONS
