"""Small in-process sliding-window rate limiters (sign-in per IP and per account; API tokens per token).

The counters live in the memory of one worker process. With ``stopnet serve --workers N`` every worker
counts on its own, so a client may get up to N times the limit before it is refused (docs/security.md).
The lock-out after repeated failed sign-ins is kept in the database and holds across workers.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stopnet.core.errors import ServiceError


class RateLimited(ServiceError):
    """Too many requests; ``retry_after`` seconds until the next one is accepted (HTTP 429)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": self.retry_after}


class SlidingWindowLimiter:
    """At most ``limit`` accepted hits per key in any ``window_s`` seconds (a log of hit times per key).

    Refused hits are not counted, so a client that keeps knocking is let in again as soon as its oldest
    accepted hit leaves the window. Memory is bounded: at most ``max_keys`` keys (the stalest are dropped
    first) and ``limit`` timestamps per key.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one hit for ``key``; None when accepted, else the seconds until one would be."""
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(key, None)  # popped and re-inserted: the dict keeps the freshest last
            if hits is None:
                hits = deque()
            start = now - self.window_s
            while hits and hits[0] <= start:
                hits.popleft()
            if len(hits) >= self.limit:
                self._hits[key] = hits
                return max(hits[0] + self.window_s - now, 0.001)
            hits.append(now)
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                del self._hits[next(iter(self._hits))]
            return None

    def check(self, key: str, what: str) -> None:
        """Count one hit; raise :class:`RateLimited` when refused."""
        wait = self.hit(key)
        if wait is not None:
            raise RateLimited(f"too many {what}; try again in {math.ceil(wait)} s", math.ceil(wait))

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


@dataclass
class SignInLimits:
    """The sign-in limiters of one application (every sign-in step counts: password, code, new password)."""

    per_ip: SlidingWindowLimiter
    per_account: SlidingWindowLimiter

    def check(self, ip: str, account: str) -> None:
        self.per_ip.check(f"ip:{ip}", "sign-in attempts from this address")
        self.per_account.check(f"acct:{account.strip().lower()}", "sign-in attempts for this account")


# Windows and default limits (docs/security.md); the limits are the settings sign_in_limit_per_ip,
# sign_in_limit_per_account and token_requests_per_minute.
SIGN_IN_PER_IP = (30, 60.0)  # 30 attempts a minute from one address (a customs office behind one NAT)
SIGN_IN_PER_ACCOUNT = (20, 300.0)  # 20 attempts (each step counts) in 5 minutes for one account
TOKEN_REQUESTS = (1200, 60.0)  # 1,200 requests a minute for one API token (20 a second)

_state_lock = threading.Lock()


def limit_password_check(request: Any, account: str) -> None:
    """A form or API call that checks the password again counts against the sign-in limits (the client
    address, and the account), as a sign-in does."""
    ip = request.client.host if request.client else "unknown"
    sign_in_limits(request.app).check(ip, account)


def sign_in_limits(app: Any) -> SignInLimits:
    """The application's sign-in limiters, made on first use and kept in ``app.state``."""
    limits: SignInLimits | None = getattr(app.state, "sign_in_limits", None)
    if limits is not None:
        return limits
    with _state_lock:
        limits = getattr(app.state, "sign_in_limits", None)
        if limits is None:
            settings = app.state.settings
            limits = SignInLimits(
                per_ip=SlidingWindowLimiter(settings.sign_in_limit_per_ip, SIGN_IN_PER_IP[1]),
                per_account=SlidingWindowLimiter(settings.sign_in_limit_per_account, SIGN_IN_PER_ACCOUNT[1]),
            )
            app.state.sign_in_limits = limits
    return limits


def token_limiter(app: Any) -> SlidingWindowLimiter:
    """The application's API-token limiter (``token_requests_per_minute``), kept in ``app.state``."""
    limiter: SlidingWindowLimiter | None = getattr(app.state, "token_limiter", None)
    if limiter is not None:
        return limiter
    with _state_lock:
        limiter = getattr(app.state, "token_limiter", None)
        if limiter is None:
            limiter = SlidingWindowLimiter(app.state.settings.token_requests_per_minute, TOKEN_REQUESTS[1])
            app.state.token_limiter = limiter
    return limiter
