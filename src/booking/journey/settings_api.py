"""The business's feedback settings: the question's wording (IT/EN), when it is asked
and how soon a low score is called back.

Like the catalog's settings (:mod:`booking.catalog.audit`): a read answers an ``ETag``
(a hash of the representation), a change honours ``If-Match`` (412 when stale), managers
only, and each change writes one ``catalog_audit`` row (entity ``business``, action
``feedback_changed``) with the fields before and after, in the change's transaction.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from booking import db
from booking.access.principal import Principal
from booking.catalog import audit
from booking.errors import InvalidInput, NotFound
from booking.journey.wording import DEFAULT_REQUEST, PLACEHOLDERS, check_wording

LOCALES = ("it", "en")
Text = Annotated[str, Meta(min_length=1, max_length=600)]


class FeedbackWording(Struct, forbid_unknown_fields=True):
    it: Text | None = None
    en: Text | None = None


class FeedbackSettings(Struct):
    """``wording``: the business's own question per language (null: the built-in text,
    shown in ``built_in``). Placeholders: ``{business}``, ``{name}``, ``{service}``,
    ``{link}``."""

    delay_minutes: int
    callback_within_minutes: int
    wording: FeedbackWording
    built_in: FeedbackWording
    placeholders: list[str]


class FeedbackSettingsPatch(Struct, forbid_unknown_fields=True):
    """What is left out stays as it is; a language set to null goes back to the built-in
    text."""

    delay_minutes: Annotated[int, Meta(ge=0, le=10_080)] | UnsetType = UNSET
    callback_within_minutes: Annotated[int, Meta(ge=5, le=20_160)] | UnsetType = UNSET
    wording: FeedbackWording | UnsetType = UNSET


BUILT_IN = FeedbackWording(it=DEFAULT_REQUEST["it"], en=DEFAULT_REQUEST["en"])
_COLUMNS = "feedback_delay_minutes, callback_within_minutes, feedback_wording"


def _settings(row: Any) -> FeedbackSettings:
    raw = row["feedback_wording"]
    stored: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return FeedbackSettings(
        delay_minutes=row["feedback_delay_minutes"],
        callback_within_minutes=row["callback_within_minutes"],
        wording=FeedbackWording(**{k: stored.get(k) for k in LOCALES}),
        built_in=BUILT_IN,
        placeholders=sorted(PLACEHOLDERS),
    )


async def get_settings(principal: Principal, business_id: UUID) -> FeedbackSettings:
    principal.require_business(business_id)
    async with db.connection() as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM business WHERE id = $1", business_id)
    if row is None:
        raise NotFound("No such business.")
    return _settings(row)


async def patch_settings(
    principal: Principal, business_id: UUID, data: FeedbackSettingsPatch, if_match: str | None
) -> FeedbackSettings:
    principal.require_manager(business_id)
    if all(getattr(data, name) is UNSET for name in data.__struct_fields__):
        raise InvalidInput("Nothing to change: name at least one field.")
    if not isinstance(data.wording, UnsetType):
        texts = {k: v for k, v in msgspec.to_builtins(data.wording).items() if v is not None}
        if problems := check_wording(texts):
            raise InvalidInput("The wording is not usable: " + "; ".join(problems), field="wording")
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM business WHERE id = $1 FOR UPDATE", business_id
        )
        if row is None:
            raise NotFound("No such business.")
        before = _settings(row)
        audit.check_if_match(if_match, before)
        delay = (
            before.delay_minutes
            if isinstance(data.delay_minutes, UnsetType)
            else data.delay_minutes
        )
        callback = (
            before.callback_within_minutes
            if isinstance(data.callback_within_minutes, UnsetType)
            else data.callback_within_minutes
        )
        wording = before.wording if isinstance(data.wording, UnsetType) else data.wording
        stored = {k: v for k, v in msgspec.to_builtins(wording).items() if v is not None}
        updated = await conn.fetchrow(
            "UPDATE business SET feedback_delay_minutes = $2, callback_within_minutes = $3, "
            f"feedback_wording = $4::jsonb WHERE id = $1 RETURNING {_COLUMNS}",
            business_id,
            delay,
            callback,
            json.dumps(stored),
        )
        after = _settings(updated)
        await audit.record(
            conn,
            principal,
            business_id,
            "business",
            business_id,
            "feedback_changed",
            audit.diff(before, after),
        )
    return after
