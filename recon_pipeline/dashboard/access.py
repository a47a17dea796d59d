"""Who may see and do what: dashboard accounts, roles, and the rows a user's scope covers.

Accounts come from the settings (`dashboard.accounts`), never from the warehouse:

    dashboard:
      accounts:
        - {username: wang, name: 王会计, role: finance, password_hash: "$argon2id$..."}
        - {username: feng, name: 冯洋, role: manager, email: yang.feng@corp.cn}   # team: by manager_email
        - {username: ma, name: 马海燕, role: sales, salesperson_id: S002}

Passwords are stored only as argon2id hashes (`recon dashboard-password` makes one), checked
with argon2-cffi. Roles: `finance` sees everything and decides the review queue; `manager`
sees their team (salespeople whose manager_email is the manager's e-mail, or `team: [ids]`,
and the manager's own `salesperson_id`); `sales` sees only their own orders, customers,
alerts and diff-list items.

With no accounts the dashboard is the single-user tool it always was (open on localhost, or
behind one access token): everything visible, the actor's name typed in the forms.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

ROLES = ("finance", "manager", "sales")


class AccountError(ValueError):
    """A misconfigured account (message in Chinese, shown when the dashboard starts)."""


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    password_hash: str = field(repr=False, default="")
    name: str = ""
    email: str = ""
    salesperson_id: str = ""
    team: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.username

    @property
    def is_finance(self) -> bool:
        return self.role == "finance"


def accounts_from_settings(entries: Iterable[dict[str, Any]] | None) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for entry in entries or []:
        username = str(entry.get("username") or "").strip()
        role = str(entry.get("role") or "").strip()
        password_hash = str(entry.get("password_hash") or "")
        if not username:
            raise AccountError("看板账号缺少 username")
        if role not in ROLES:
            raise AccountError(f"看板账号 {username} 的角色 {role!r} 无效（可选 finance / manager / sales）")
        if not password_hash.startswith("$argon2"):
            raise AccountError(f"看板账号 {username} 缺少 argon2 密码哈希（用 recon dashboard-password 生成）")
        if role == "sales" and not entry.get("salesperson_id"):
            raise AccountError(f"销售账号 {username} 需要 salesperson_id")
        if role == "manager" and not (entry.get("email") or entry.get("team")):
            raise AccountError(f"主管账号 {username} 需要 email（按销售的 manager_email 找团队）或 team 列表")
        if username in accounts:
            raise AccountError(f"看板账号 {username} 重复")
        accounts[username] = Account(
            username=username, role=role, password_hash=password_hash, name=str(entry.get("name") or ""),
            email=str(entry.get("email") or ""), salesperson_id=str(entry.get("salesperson_id") or ""),
            team=tuple(str(s) for s in entry.get("team") or ()),
        )
    return accounts


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(account: Account | None, password: str) -> bool:
    """Constant work whether or not the account exists (no user enumeration by timing)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    target = account.password_hash if account else _DUMMY_HASH.get()
    try:
        hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return account is not None


class _DummyHash:
    value: str | None = None

    def get(self) -> str:
        if self.value is None:
            self.value = hash_password("not-a-real-password")
        return self.value


_DUMMY_HASH = _DummyHash()


class LoginThrottle:
    """Password guessing is slowed to a stop: after `max_failures` wrong passwords for one
    username, or from one client address, within `window_seconds`, that username or address
    is refused until the window has passed (a right password then works again). In memory:
    a restart forgets, which only helps the owner of the account."""

    def __init__(self, max_failures: int = 5, window_seconds: float = 900, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window, self.clock = max_failures, window_seconds, clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        seen = self._failures.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        return seen

    def wait_seconds(self, username: str, client: str) -> float:
        """0 when a login may be tried now, else how long until it may."""
        now = self.clock()
        with self._lock:
            waits = [seen[0] + self.window - now for key in self._keys(username, client)
                     if len(seen := self._recent(key, now)) >= self.max_failures]
        return max(waits, default=0.0)

    def failed(self, username: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 10_000:  # bounded under a flood of made-up names
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window}
            for key in self._keys(username, client):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop("user:" + username.lower(), None)

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str]:
        return "user:" + username.lower(), "client:" + client


@dataclass(frozen=True)
class Scope:
    """The salespeople whose rows a user sees; None = everything (finance, single-user mode)."""

    salespeople: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.salespeople is None

    def covers(self, salesperson_id: str | None) -> bool:
        return self.salespeople is None or (salesperson_id is not None and salesperson_id in self.salespeople)

    def sql(self, column: str) -> tuple[str, list]:
        """A WHERE clause keeping rows whose `column` (a salesperson id) is in scope."""
        if self.salespeople is None:
            return "TRUE", []
        return f"list_contains(?::VARCHAR[], {column})", [sorted(self.salespeople)]

    def customer_sql(self, customer_column: str, owners_published: bool = True) -> tuple[str, list]:
        """Customers in scope: with an order of one of the salespeople, or owned by one."""
        if self.salespeople is None:
            return "TRUE", []
        people = sorted(self.salespeople)
        clause = (f"{customer_column} IN (SELECT customer_id FROM mart.fct_order_reconciliation "
                  f"WHERE list_contains(?::VARCHAR[], salesperson_id))")
        if not owners_published:
            return clause, [people]
        return (
            f"({clause} OR {customer_column} IN (SELECT customer_id FROM mart.dim_customers "
            f"WHERE list_contains(?::VARCHAR[], owner_salesperson_id)))",
            [people, people],
        )


def scope_for(account: Account | None, team_of_manager: dict[str, set[str]] | None = None) -> Scope:
    """What an account sees. `team_of_manager` maps a manager's e-mail (lower case) to the
    salespeople reporting to them (from mart.dim_salespeople)."""
    if account is None or account.role == "finance":
        return Scope(None)
    if account.role == "sales":
        return Scope(frozenset({account.salesperson_id}))
    team = set(account.team)
    if account.email and team_of_manager:
        team |= team_of_manager.get(account.email.lower(), set())
    if account.salesperson_id:
        team.add(account.salesperson_id)
    return Scope(frozenset(team))
