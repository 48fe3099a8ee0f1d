"""One booking's journey: every touchpoint in time order, whichever part produced it.

Nothing is copied into a journey table: the timeline is read, in one statement, from
the rows the features already write - ``booking_history`` (created, held, confirmed,
changed with old -> new and override reason, at risk, checked in, completed, no-show,
feedback), ``message`` (each SMS queued -> sent -> delivered/failed with Twilio's status
and error code; reminders are SMS with the ``reminder`` template), ``webhook_delivery``
(each partner delivery and its result), ``reschedule_offer`` (lost-slot offers and
earlier-slot waitlist offers: made, accepted, expired, withdrawn), ``waitlist_entry``
``promise`` (made, at risk, kept, broken) and ``feedback`` (requested, not asked and
why, called back; the answer itself is a history event).

Who reads what (:func:`audience_of`):

* the business (staff and admin keys) sees everything;
* a partner sees the journeys of the bookings it may read, and of partner webhook
  deliveries only its own;
* the customer (their booking link) sees a friendly subset (:data:`CUSTOMER_TOUCHPOINTS`):
  what happened to their booking and the messages sent to them, no staff alerts,
  webhooks, promises' internals or key labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from booking import db
from booking.access.principal import Principal
from booking.bookings.checks import check_access
from booking.errors import NotFound
from booking.journey.schemas import Actor, Journey, JourneyEntry
from booking.wire_time import localize

Audience = Literal["business", "partner", "customer"]

# The customer's page shows these (plus the SMS sent to the customer).
CUSTOMER_TOUCHPOINTS = frozenset(
    {
        "booking.created",
        "hold.used",
        "booking.confirmed",
        "booking.changed",
        "booking.cancelled",
        "booking.checked_in",
        "booking.completed",
        "booking.no_show",
        "offer.made",
        "offer.accepted",
        "offer.expired",
        "waitlist.joined",
        "waitlist.offer_made",
        "waitlist.offer_accepted",
        "feedback.requested",
        "feedback.received",
    }
)
_CUSTOMER_SMS_STEPS = ("sms.sent", "sms.delivered", "reminder.sent", "reminder.delivered")
_CUSTOMER_DETAIL = ("from_status", "to_status", "changes", "template", "score", "comment")

# Source order breaks ties between rows of one transaction (the same instant): an offer's
# decision first (it caused the booking's change), then the history event, its message,
# delivery, waitlist, promise, feedback.
JOURNEY_SQL = """
WITH b AS (
    SELECT id, business_id, customer_id FROM booking WHERE id = $1
), e AS (
    SELECT h.occurred_at AS at, 1 AS src, h.id AS seq, h.event AS touchpoint,
           h.actor_type, h.actor_id, h.channel,
           jsonb_strip_nulls(jsonb_build_object(
               'from_status', h.from_status, 'to_status', h.to_status,
               'changes', CASE WHEN h.changes = '{}'::jsonb THEN NULL ELSE h.changes END,
               'reason', h.reason,
               'policy_override', CASE WHEN h.policy_override THEN true END)) AS detail,
           NULL::uuid AS partner_id
    FROM booking_history h JOIN b ON h.business_id = b.business_id AND h.booking_id = b.id
  UNION ALL
    SELECT v.at, 2, 0,
           (CASE WHEN m.template = 'reminder' THEN 'reminder.' ELSE 'sms.' END) || v.step,
           'system', 'notifications', 'sms',
           jsonb_strip_nulls(jsonb_build_object(
               'message_id', m.id, 'template', m.template, 'status', m.status,
               'to', CASE WHEN m.customer_id IS NOT DISTINCT FROM b.customer_id
                          AND m.customer_id IS NOT NULL THEN 'customer' ELSE 'staff' END,
               'twilio_status', CASE WHEN v.step <> 'queued' THEN m.provider_status END,
               'error_code', CASE WHEN v.step IN ('failed', 'undelivered') THEN m.error_code END,
               'error', CASE WHEN v.step IN ('failed', 'undelivered', 'skipped')
                             THEN m.error_message END,
               'attempts', CASE WHEN v.step <> 'queued' THEN m.attempts END)),
           NULL
    FROM message m JOIN b ON m.business_id = b.business_id AND m.booking_id = b.id
    CROSS JOIN LATERAL (VALUES
        (m.created_at, 'queued'),
        (m.sent_at, 'sent'),
        (CASE WHEN m.status = 'delivered' THEN coalesce(m.delivered_at, m.updated_at)
              WHEN m.status IN ('failed', 'undelivered', 'skipped') THEN m.updated_at END,
         m.status)
    ) AS v(at, step)
    WHERE v.at IS NOT NULL
  UNION ALL
    SELECT coalesce(d.delivered_at, d.last_attempt_at, d.created_at), 3, o.id,
           'webhook.' || CASE d.status WHEN 'succeeded' THEN 'delivered'
                                       WHEN 'failed' THEN 'failed' ELSE 'pending' END,
           'system', 'webhooks', 'webhook',
           jsonb_strip_nulls(jsonb_build_object(
               'event_type', d.event_type, 'partner', p.name, 'attempts', d.attempts,
               'status_code', d.last_status_code, 'error', d.last_error)),
           e.partner_id
    FROM outbox o JOIN b ON o.business_id = b.business_id AND o.aggregate_id = b.id
    JOIN webhook_delivery d ON d.outbox_event_id = o.id
    JOIN webhook_endpoint e ON e.id = d.endpoint_id
    JOIN partner p ON p.id = e.partner_id
  UNION ALL
    SELECT v.at, 0, 0,
           (CASE WHEN r.kind = 'earlier_slot' THEN 'waitlist.offer_' ELSE 'offer.' END)
               || v.step,
           split_part(v.actor, ':', 1), substr(v.actor, strpos(v.actor, ':') + 1),
           CASE WHEN v.step = 'accepted' THEN coalesce((
                    SELECT h.channel FROM booking_history h
                    WHERE h.business_id = r.business_id AND h.booking_id = r.booking_id
                      AND h.event = 'booking.changed' AND h.occurred_at = r.decided_at
                    LIMIT 1), 'web')
                ELSE 'system' END,
           jsonb_strip_nulls(jsonb_build_object(
               'offer_id', r.id, 'expires_at', r.expires_at,
               'reason', CASE WHEN v.step = 'made' THEN nullif(r.reason, '') END,
               'options', CASE WHEN v.step = 'made' THEN (
                   SELECT count(*) FROM reschedule_option x
                   WHERE x.business_id = r.business_id AND x.offer_id = r.id) END,
               'accepted_option', CASE WHEN v.step = 'accepted' THEN r.accepted_position END)),
           NULL
    FROM reschedule_offer r JOIN b ON r.business_id = b.business_id AND r.booking_id = b.id
    CROSS JOIN LATERAL (VALUES
        (r.created_at, 'made', 'system:guarantee'),
        (CASE WHEN r.status = 'open' THEN NULL
              WHEN r.status = 'expired' THEN coalesce(r.decided_at, r.expires_at)
              ELSE r.decided_at END,
         CASE r.status WHEN 'withdrawn' THEN 'withdrawn' ELSE r.status END,
         coalesce(r.decided_by, 'system:guarantee'))
    ) AS v(at, step, actor)
    WHERE v.at IS NOT NULL
  UNION ALL
    SELECT v.at, 4, 0, 'waitlist.' || v.step,
           split_part(w.created_by, ':', 1), substr(w.created_by, strpos(w.created_by, ':') + 1),
           'system',
           jsonb_build_object('earliest', w.earliest, 'latest', w.latest, 'status', w.status),
           NULL
    FROM waitlist_entry w JOIN b ON w.business_id = b.business_id AND w.booking_id = b.id
    CROSS JOIN LATERAL (VALUES
        (w.created_at, 'joined'),
        (w.closed_at, w.status)
    ) AS v(at, step)
    WHERE v.at IS NOT NULL
  UNION ALL
    SELECT v.at, 5, 0, 'promise.' || v.step, 'system', 'guarantee', 'system',
           jsonb_build_object('promise_id', pr.id, 'kind', pr.kind, 'due_at', pr.due_at,
                              'status', pr.status),
           NULL
    FROM promise pr JOIN b ON pr.business_id = b.business_id AND pr.booking_id = b.id
    CROSS JOIN LATERAL (VALUES
        (pr.made_at, 'made'),
        (pr.nudged_at, 'at_risk'),
        (CASE WHEN pr.status <> 'open' THEN coalesce(pr.resolved_at, pr.due_at) END, pr.status)
    ) AS v(at, step)
    WHERE v.at IS NOT NULL
  UNION ALL
    SELECT v.at, 6, 0, 'feedback.' || v.step, 'system', 'journey', v.channel,
           jsonb_strip_nulls(jsonb_build_object(
               'reason', CASE WHEN v.step = 'not_asked' THEN f.not_asked_reason END,
               'message_id', CASE WHEN v.step = 'requested' THEN f.message_id END)),
           NULL
    FROM feedback f JOIN b ON f.business_id = b.business_id AND f.booking_id = b.id
    CROSS JOIN LATERAL (VALUES
        (f.asked_at, 'requested', 'sms'),
        (CASE WHEN f.status = 'not_asked' THEN f.ask_at END, 'not_asked', 'system'),
        (f.called_back_at, 'called_back', 'phone')
    ) AS v(at, step, channel)
    WHERE v.at IS NOT NULL
)
SELECT e.at, e.touchpoint, e.actor_type, e.actor_id, e.channel, e.detail, e.partner_id,
       k.name AS key_name, k.role AS key_role, kp.name AS key_partner
FROM e
LEFT JOIN api_key k ON e.actor_type IN ('staff', 'admin', 'partner', 'app')
    AND k.id = (CASE WHEN e.actor_id ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                     THEN e.actor_id::uuid END)
LEFT JOIN partner kp ON kp.id = k.partner_id
ORDER BY e.at, e.src, e.seq
"""

_BOOKING_SQL = """
    SELECT b.id, b.business_id, b.partner_id, b.status, b.reference_code, biz.time_zone
    FROM booking b JOIN business biz ON biz.id = b.business_id WHERE b.id = $1
"""


def audience_of(principal: Principal) -> Audience:
    if principal.kind == "customer":
        return "customer"
    if principal.kind == "partner":
        return "partner"
    return "business"


def actor_of(row: Mapping[str, Any], audience: Audience) -> Actor:
    """The actor as the reader may see it: key labels and system parts for the business,
    roles and partner names for everyone else."""
    kind = row["actor_type"]
    if kind == "customer":
        return Actor(type="customer", name="customer")
    if kind == "partner":
        return Actor(type="partner", name=row["key_partner"] or "partner")
    if kind == "staff":
        role = row["key_role"] or "front_desk"
        label = row["key_name"] or role.replace("_", " ")
        return Actor(type=role, name=label if audience == "business" else "the business")
    if kind in ("admin", "app"):
        name = row["key_name"] or kind
        return Actor(type=kind, name=name if audience == "business" else "the business")
    return Actor(type="system", name=row["actor_id"] if audience == "business" else "the business")


def visible(row: Mapping[str, Any], principal: Principal, audience: Audience) -> bool:
    touchpoint: str = row["touchpoint"]
    if audience == "business":
        return True
    if audience == "partner":
        # Another partner's webhook deliveries are theirs (a read_all partner sees the
        # booking, not who else is told about it).
        return not touchpoint.startswith("webhook.") or row["partner_id"] == principal.partner_id
    if touchpoint in _CUSTOMER_SMS_STEPS:
        detail: dict[str, Any] = _detail(row)
        return detail.get("to") == "customer"
    return touchpoint in CUSTOMER_TOUCHPOINTS


def _detail(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row["detail"]
    value: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return value


def entry_of(row: Mapping[str, Any], audience: Audience, tz: ZoneInfo) -> JourneyEntry:
    detail = _detail(row)
    if audience == "customer":
        detail = {key: value for key, value in detail.items() if key in _CUSTOMER_DETAIL}
    return localize(
        JourneyEntry(
            at=row["at"],
            touchpoint=row["touchpoint"],
            actor=actor_of(row, audience),
            channel=row["channel"],
            detail=detail,
        ),
        tz,
    )


async def booking_journey(principal: Principal, booking_id: UUID) -> Journey:
    """The booking's journey as ``principal`` may see it (404 for a booking they may not
    read, another tenant's included)."""
    async with db.connection() as conn:
        booking = await conn.fetchrow(_BOOKING_SQL, booking_id)
        if booking is None:
            raise NotFound("No such booking.")
        check_access(principal, booking)
        rows = await conn.fetch(JOURNEY_SQL, booking_id)
    audience = audience_of(principal)
    tz = ZoneInfo(booking["time_zone"])
    entries = [entry_of(row, audience, tz) for row in rows if visible(row, principal, audience)]
    return Journey(
        booking_id=booking["id"],
        business_id=booking["business_id"],
        reference_code=booking["reference_code"],
        status=booking["status"],
        time_zone=tz.key,
        audience=audience,
        entries=entries,
    )
