"""Response shapes for a booking's journey (explicit, never table rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

ActorType = Literal["customer", "front_desk", "manager", "admin", "partner", "app", "system"]


class Actor(Struct):
    """Who made the touchpoint happen: the customer, a partner (by name), the front desk
    or a manager (by the label of their key), or the system (which part of it)."""

    type: str
    name: str


class JourneyEntry(Struct):
    at: datetime
    touchpoint: str
    actor: Actor
    channel: str
    detail: dict[str, Any]


class Journey(Struct):
    booking_id: UUID
    business_id: UUID
    reference_code: str
    status: str
    time_zone: str
    audience: Literal["business", "partner", "customer"]
    entries: list[JourneyEntry]


class FeedbackIn(Struct, forbid_unknown_fields=True):
    score: Annotated[int, Meta(ge=1, le=5, examples=[4])]
    comment: Annotated[str, Meta(max_length=2000)] = ""


class CallbackOut(Struct):
    id: UUID
    status: str
    due_at: datetime


class FeedbackOut(Struct):
    """The booking's feedback: ``status`` none (not completed yet), scheduled (the question
    is due at ``ask_at``), asked, received (``score`` 1-5, ``comment``, ``channel`` sms or
    web) or not_asked (``not_asked_reason``: cancelled, no-show, opted out). A score of 2
    or less has a ``callback`` promise."""

    booking_id: UUID
    time_zone: str
    status: str
    score: int | None
    comment: str | None
    channel: str | None
    ask_at: datetime | None
    asked_at: datetime | None
    received_at: datetime | None
    not_asked_reason: str | None
    callback: CallbackOut | None
