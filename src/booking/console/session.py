"""Staff sign-in for the web consoles (the front desk at /desk, a manager's pages).

Nobody types an API key at a counter. A manager (or an admin) issues a *sign-in*: a
short one-time code (``K7QM-4XPD``, 15 minutes) and a link carrying it, for a staff
key of their business (an existing one, or a new one made for the desk). Whoever
enters the code gets a browser *session*: a random token in an HttpOnly, SameSite=Lax
cookie (Secure over https), stored here as a SHA-256 hash, bound to the key.

* A session ends when it is signed out, after :data:`SESSION_LIFETIME`, after
  :data:`IDLE_TIMEOUT` without a request, or at once when its key is revoked (every
  lookup joins the key and asks ``revoked_at IS NULL``; nothing is cached).
* Every form carries :meth:`StaffSession.csrf`, an HMAC of the session id under the
  app's secret; :func:`check_csrf` refuses a missing or wrong one and a cross-origin
  ``Origin``. Sessions are stateful, so the token needs no expiry of its own.
* The session's :class:`~booking.access.principal.Principal` is the key's own: a
  console can do exactly what the key may do through the API, through the same services.

Reuse (HTTP glue in :mod:`booking.console.web`): take ``staff: NamedDependency[StaffSession]``
in a console handler declared with ``opt=CONSOLE`` (see :mod:`booking.console.web`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from booking import db
from booking.access.principal import Principal
from booking.access.service import create_api_key
from booking.access.tokens import same_secret
from booking.bookings.references import REFERENCE_ALPHABET
from booking.errors import Forbidden, InvalidInput, NotFound

SESSION_COOKIE = "booking_staff"
SIGN_IN_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)  # one shift
IDLE_TIMEOUT = timedelta(hours=2)
_SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
CODE_LENGTH = 8
# Read aloud or typed from a phone: the reference codes' alphabet, forgiving of case,
# spaces, dashes and the look-alikes that alphabet leaves out.
_LOOK_ALIKES = str.maketrans({"O": "Q", "0": "Q", "I": "J", "1": "J", "L": "J", "U": "V"})


@dataclass(frozen=True, slots=True)
class IssuedSignIn:
    id: UUID
    code: str  # shown once, e.g. "K7QM-4XPD"
    link: str
    api_key_id: UUID
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StaffSession:
    id: UUID
    principal: Principal
    business_id: UUID
    label: str
    key_name: str
    expires_at: datetime
    csrf: str

    @property
    def name(self) -> str:
        """Who is signed in, as the console shows it (the desk's label, else the key's)."""
        return self.label or self.key_name or self.principal.role or "staff"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def normalize_code(raw: str) -> str:
    cleaned = "".join(ch for ch in raw.upper() if ch.isalnum())
    return cleaned.translate(_LOOK_ALIKES)


def _new_code() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(CODE_LENGTH))


def csrf_for(secret_key: str, session_id: UUID) -> str:
    mac = hmac.new(secret_key.encode(), f"staff-csrf:{session_id}".encode(), hashlib.sha256)
    return mac.hexdigest()


def _may_issue(principal: Principal, business_id: UUID) -> None:
    principal.require_business(business_id)  # another tenant's business: 404
    if not principal.is_manager:
        raise Forbidden("Only a manager or an admin may issue a console sign-in.")


async def issue_sign_in(
    principal: Principal,
    *,
    base_url: str,
    api_key_id: UUID | None = None,
    business_id: UUID | None = None,
    role: str = "front_desk",
    label: str = "",
) -> IssuedSignIn:
    """A one-time sign-in for a staff key: the given one, or a new key for the desk.

    A manager signs in keys of their own business; an admin names the business (or the
    key). A new key is a ``role`` staff key named after ``label`` ("Counter 1")."""
    label = label.strip()
    if len(label) > 100:
        raise InvalidInput("label: at most 100 characters.")
    if api_key_id is not None:
        async with db.connection() as conn:
            key = await conn.fetchrow(
                "SELECT id, kind, business_ids FROM api_key WHERE id = $1 AND revoked_at IS NULL",
                api_key_id,
            )
        if key is None or key["kind"] != "staff" or len(key["business_ids"]) != 1:
            raise NotFound("No such staff key.")
        if not principal.sees_business(key["business_ids"][0]):
            raise NotFound("No such staff key.")
        _may_issue(principal, key["business_ids"][0])
    else:
        if business_id is None:
            if len(principal.business_ids) != 1:
                raise InvalidInput("Name the business (business_id) or the key (api_key_id).")
            (business_id,) = tuple(principal.business_ids)
        _may_issue(principal, business_id)
        if role not in ("front_desk", "manager"):
            raise InvalidInput("role: front_desk or manager.")
        issued_key = await create_api_key(
            kind="staff",
            role=role,
            business_ids=[business_id],
            name=label or f"console {role.replace('_', ' ')}",
            created_by=principal.actor_label,
        )
        api_key_id = issued_key.id
    code = _new_code()
    expires_at = datetime.now(UTC) + SIGN_IN_LIFETIME
    async with db.transaction() as conn:
        sign_in_id: UUID = await conn.fetchval(
            """
            INSERT INTO staff_sign_in (api_key_id, code_hash, label, created_by, expires_at)
            VALUES ($1, $2, $3, $4, $5) RETURNING id
            """,
            api_key_id,
            _hash(code),
            label,
            principal.actor_label,
            expires_at,
        )
    shown = f"{code[:4]}-{code[4:]}"
    return IssuedSignIn(
        id=sign_in_id,
        code=shown,
        link=f"{base_url.rstrip('/')}/desk/sign-in?code={shown}",
        api_key_id=api_key_id,
        expires_at=expires_at,
    )


async def redeem_sign_in(raw_code: str) -> str | None:
    """The new session's token (for the cookie) for a valid unused code, else None.
    One use: the code is marked used in the same transaction that opens the session."""
    code = normalize_code(raw_code)
    if len(code) != CODE_LENGTH:
        return None
    token = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            UPDATE staff_sign_in s SET used_at = now()
            FROM api_key k
            WHERE s.code_hash = $1 AND s.used_at IS NULL AND s.expires_at > now()
              AND k.id = s.api_key_id AND k.revoked_at IS NULL
            RETURNING s.api_key_id, s.label
            """,
            _hash(code),
        )
        if row is None:
            return None
        await conn.execute(
            """
            INSERT INTO staff_session (api_key_id, token_hash, label, expires_at)
            VALUES ($1, $2, $3, now() + $4::interval)
            """,
            row["api_key_id"],
            _hash(token),
            row["label"],
            SESSION_LIFETIME,
        )
    return token


def _principal(row: Any) -> Principal:
    return Principal(
        kind="staff",
        id=str(row["api_key_id"]),
        role=row["role"],
        business_ids=frozenset(row["business_ids"]),
        scopes=frozenset(row["scopes"]),
        rate_limit=row["rate_limit_per_minute"],
    )


async def session_for(token: str | None, secret_key: str) -> StaffSession | None:
    """The live session behind a cookie's token, or None (unknown, signed out, expired,
    idle too long, or its key revoked)."""
    if not token or len(token) > 100:
        return None
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """
            SELECT s.id, s.api_key_id, s.label, s.expires_at, s.last_seen_at,
                   k.role, k.business_ids, k.scopes, k.rate_limit_per_minute, k.name
            FROM staff_session s JOIN api_key k ON k.id = s.api_key_id
            WHERE s.token_hash = $1 AND s.signed_out_at IS NULL AND s.expires_at > now()
              AND s.last_seen_at > now() - $2::interval
              AND k.revoked_at IS NULL AND k.kind = 'staff'
            """,
            _hash(token),
            IDLE_TIMEOUT,
        )
        if row is None or len(row["business_ids"]) != 1:
            return None
        if row["last_seen_at"] < datetime.now(UTC) - _SEEN_EVERY:
            await conn.execute(
                "UPDATE staff_session SET last_seen_at = now() WHERE id = $1", row["id"]
            )
    return StaffSession(
        id=row["id"],
        principal=_principal(row),
        business_id=row["business_ids"][0],
        label=row["label"],
        key_name=row["name"],
        expires_at=row["expires_at"],
        csrf=csrf_for(secret_key, row["id"]),
    )


async def sign_out(session_id: UUID) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE staff_session SET signed_out_at = now() WHERE id = $1 "
            "AND signed_out_at IS NULL",
            session_id,
        )


def check_csrf(session: StaffSession, sent: str | None) -> bool:
    return sent is not None and same_secret(sent, session.csrf)
