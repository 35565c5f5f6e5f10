"""Small in-process rate limiters (sign-in per IP and per account; API tokens per token) and the
back-off of failed sign-ins (per address and account, and per account).

The counters live in the memory of one worker process. With ``stopnet serve --workers N`` every worker
counts on its own, so a client may get up to N times the limit before it is refused (docs/security.md).
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
        self.check_address(ip)
        self.check_account(account)

    def check_address(self, ip: str) -> None:
        self.per_ip.check(f"ip:{ip}", "sign-in attempts from this address")

    def check_account(self, account: str) -> None:
        self.per_account.check(f"acct:{account.strip().lower()}", "sign-in attempts for this account")


class FailureBackoff:
    """Failed attempts per key, and the wait they impose: the first ``free`` failures cost nothing, then
    each further attempt waits ``first_s`` seconds after the last failure, doubling with each failure up
    to ``cap_s``. A key is forgotten ``forget_s`` seconds after its last failure; memory is bounded like
    :class:`SlidingWindowLimiter`'s (the stalest keys are dropped first)."""

    def __init__(
        self,
        free: int,
        first_s: float,
        cap_s: float,
        *,
        forget_s: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.free, self.first_s, self.cap_s, self.forget_s = free, first_s, cap_s, forget_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures, time of the last one)
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap_s, self.first_s * 2 ** min(failures - self.free, 40)))

    def wait(self, key: str) -> float:
        """Seconds until an attempt for ``key`` may be checked (0: now)."""
        now = self.clock()
        with self._lock:
            entry = self._failures.get(key)
            if entry is None:
                return 0.0
            failures, last = entry
            if now - last >= self.forget_s:
                del self._failures[key]
                return 0.0
            return max(0.0, last + self.delay(failures) - now)

    def fail(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            failures, _ = self._failures.pop(key, (0, now))
            self._failures[key] = (failures + 1, now)
            while len(self._failures) > self.max_keys:
                del self._failures[next(iter(self._failures))]

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


def too_many_failures(wait_s: float) -> str:
    """The one answer of every sign-in step (password or code) while failed attempts impose a wait."""
    wait = max(1, math.ceil(wait_s))
    if wait >= 120:
        when = f"{math.ceil(wait / 60)} minutes"
    else:
        when = "1 second" if wait == 1 else f"{wait} seconds"
    return f"too many failed sign-ins; try again in {when}"


@dataclass
class SignInGuard:
    """What stands before a password or code is checked, in this order:

    1. the request rate from the client address (:class:`SignInLimits`, 429);
    2. the back-off of this address for this account (``per_address``: 5 failures free, then 1 minute,
       doubling up to an hour), which only failures from this address make grow;
    3. the request rate for the account (429), counted only for attempts that got past 2, so that a
       stranger's refused attempts do not use up the owner's;
    4. the back-off of the account from every address (``per_account``: 5 failures free, then 1 second,
       doubling up to 5 minutes): a bound on guessing spread over many addresses, never a lock a stranger
       can hold for free: the owner waits at most the cap.

    Keys are the e-mail address as typed (lower-cased), whether or not an account has it, so unknown
    and existing addresses behave the same. ``factor`` keeps password and code failures apart.
    """

    limits: SignInLimits
    per_address: FailureBackoff
    per_account: FailureBackoff

    def admit(self, factor: str, ip: str, account: str) -> float:
        """Count the attempt; the seconds it must wait (0: check it). Raises :class:`RateLimited`."""
        account = account.strip().lower()
        self.limits.check_address(ip)
        wait = self.per_address.wait(f"{factor}:{ip}:{account}")
        if wait > 0:
            return wait
        self.limits.check_account(account)
        return self.per_account.wait(f"{factor}:{account}")

    def failed(self, factor: str, ip: str, account: str) -> None:
        account = account.strip().lower()
        self.per_address.fail(f"{factor}:{ip}:{account}")
        self.per_account.fail(f"{factor}:{account}")

    def succeeded(self, factor: str, ip: str, account: str) -> None:
        account = account.strip().lower()
        self.per_address.clear(f"{factor}:{ip}:{account}")
        self.per_account.clear(f"{factor}:{account}")

    def reset(self) -> None:
        self.limits.per_ip.reset()
        self.limits.per_account.reset()
        self.per_address.reset()
        self.per_account.reset()


# Windows and default limits (docs/security.md); the limits are the settings sign_in_limit_per_ip,
# sign_in_limit_per_account and token_requests_per_minute.
SIGN_IN_PER_IP = (30, 60.0)  # 30 attempts a minute from one address (a customs office behind one NAT)
SIGN_IN_PER_ACCOUNT = (20, 300.0)  # 20 attempts (each step counts) in 5 minutes for one account
TOKEN_REQUESTS = (1200, 60.0)  # 1,200 requests a minute for one API token (20 a second)
FREE_FAILURES = 5  # failed passwords (or codes) before any wait
ADDRESS_BACKOFF = (60.0, 3600.0)  # then from one address: 1 minute, doubling up to an hour
ACCOUNT_BACKOFF = (1.0, 300.0)  # and for the account from every address: 1 second, up to 5 minutes

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


def sign_in_guard(app: Any) -> SignInGuard:
    """The application's :class:`SignInGuard` (its rate limits are :func:`sign_in_limits`)."""
    guard: SignInGuard | None = getattr(app.state, "sign_in_guard", None)
    limits = sign_in_limits(app)
    if guard is not None and guard.limits is limits:
        return guard
    with _state_lock:
        guard = getattr(app.state, "sign_in_guard", None)
        if guard is None or guard.limits is not limits:  # the limits were replaced (tests)
            guard = SignInGuard(
                limits,
                per_address=FailureBackoff(FREE_FAILURES, *ADDRESS_BACKOFF),
                per_account=FailureBackoff(FREE_FAILURES, *ACCOUNT_BACKOFF),
            )
            app.state.sign_in_guard = guard
    return guard


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
