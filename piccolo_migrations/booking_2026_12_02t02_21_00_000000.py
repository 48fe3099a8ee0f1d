"""Feedback after the visit: one row per completed booking, and a callback promise kind.

* ``feedback`` - one row per booking (unique per business and booking), written by the
  outbox handler of ``booking.completed`` with the time to ask (``ask_at``: completion +
  the business's ``feedback_delay_minutes``). The ``ask_for_feedback`` cron sends the SMS
  (``asked``) or records why it did not (``not_asked``: cancelled or no-show by then,
  opted out). The answer (1-5 and a comment, by SMS reply or on the booking's page)
  makes it ``received``; only the first answer counts.
* ``business.feedback_delay_minutes`` (default 120), ``callback_within_minutes``
  (default 1440: a low score is a promise to call back within a day) and
  ``feedback_wording`` (``{"it": "...", "en": "..."}``; empty = the built-in text).
* ``promise.kind`` gains ``callback`` (a score of 2 or less).

Backwards drops the table and the columns and restores the kinds (failing, changing
nothing, while a callback promise exists).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:21:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "feedback after the visit; callback promises"

FORWARDS = [
    """
    CREATE TABLE feedback (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        booking_id uuid NOT NULL,
        status text NOT NULL DEFAULT 'scheduled'
            CHECK (status IN ('scheduled', 'asked', 'received', 'not_asked')),
        ask_at timestamptz NOT NULL,
        asked_at timestamptz,
        message_id uuid,
        not_asked_reason text,
        score smallint CHECK (score BETWEEN 1 AND 5),
        comment text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
        channel text CHECK (channel IN ('sms', 'web')),
        received_at timestamptz,
        called_back_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, id),
        CONSTRAINT feedback_once_per_booking UNIQUE (business_id, booking_id),
        FOREIGN KEY (business_id, booking_id) REFERENCES booking (business_id, id)
            ON DELETE CASCADE,
        FOREIGN KEY (business_id, message_id) REFERENCES message (business_id, id),
        CONSTRAINT feedback_received_has_score
            CHECK (status <> 'received' OR (score IS NOT NULL AND received_at IS NOT NULL
                                            AND channel IS NOT NULL))
    )
    """,
    "CREATE INDEX feedback_id_idx ON feedback (id)",
    "CREATE INDEX feedback_due_idx ON feedback (ask_at) WHERE status = 'scheduled'",
    "CREATE INDEX feedback_received_idx ON feedback (business_id, received_at)"
    " WHERE status = 'received'",
    """
    ALTER TABLE business
        ADD COLUMN feedback_delay_minutes integer NOT NULL DEFAULT 120
            CHECK (feedback_delay_minutes BETWEEN 0 AND 10080),
        ADD COLUMN callback_within_minutes integer NOT NULL DEFAULT 1440
            CHECK (callback_within_minutes BETWEEN 5 AND 20160),
        ADD COLUMN feedback_wording jsonb NOT NULL DEFAULT '{}'::jsonb
            CHECK (jsonb_typeof(feedback_wording) = 'object')
    """,
    "ALTER TABLE promise DROP CONSTRAINT promise_kind_check",
    """
    ALTER TABLE promise ADD CONSTRAINT promise_kind_check
        CHECK (kind IN ('confirmation', 'offer_follow_up', 'reply', 'callback'))
    """,
]
BACKWARDS = [
    "ALTER TABLE promise DROP CONSTRAINT promise_kind_check",
    """
    ALTER TABLE promise ADD CONSTRAINT promise_kind_check
        CHECK (kind IN ('confirmation', 'offer_follow_up', 'reply'))
    """,
    """
    ALTER TABLE business DROP COLUMN feedback_delay_minutes,
        DROP COLUMN callback_within_minutes, DROP COLUMN feedback_wording
    """,
    "DROP TABLE feedback",
]


async def _run_all(statements: list[str]) -> None:
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction() as txn:
        for statement in statements:
            await txn.connection.execute(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="booking", description=DESCRIPTION)

    async def run() -> None:
        await _run_all(FORWARDS)

    async def run_backwards() -> None:
        await _run_all(BACKWARDS)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
