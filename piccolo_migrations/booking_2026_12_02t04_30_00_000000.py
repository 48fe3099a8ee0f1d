"""Journey metrics from per-day summaries (issue 14): the metrics over 30 days of 100,000
bookings read 30 summary rows instead of joining every booking of the period with its
history, messages, offers and feedback (bench/journey.py).

* ``journey_day (business_id, day)``: one row per business and local day, the day's
  figures as the metrics' own statements count them (``figures`` jsonb: by channel, who
  changed, feedback by service/staff/channel, moments of truth; the minutes to
  confirmation for the percentiles), built in the zone named in ``time_zone`` by the
  statements whose digest is ``counted_by`` (a new definition of a figure rebuilds).
* ``journey_change``: append-only notes, one per write to a row the metrics count
  (trigger ``journey_note_change`` on booking, booking_history, message,
  reschedule_offer, feedback); a metrics read folds them in and rebuilds those days.
* Statistics ``booking_history_event_from_status`` (event and from_status together).

The function text is a frozen copy of ``src/booking/bookings/sql/``. Backwards drops it
all (the summaries are derived data). Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T04:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "journey metrics: per-day summaries kept current by change notes"

_JOURNEY_NOTE_CHANGE = """
-- Trigger on the rows the journey metrics count (booking; booking_history, message,
-- reschedule_offer and feedback of a booking): notes the booking in journey_change, so
-- the next metrics read rebuilds the per-day summaries (journey_day) of the days the
-- booking was on and is on (booking.journey.summary). A booking's day now is found
-- through its id; the day it left (a move, a delete) is noted by its old start.
-- Append-only on purpose, without a unique key: a writer never waits on another writer
-- or on a metrics read; the read deletes the notes it folds in.
CREATE OR REPLACE FUNCTION journey_note_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    BEGIN
        IF TG_TABLE_NAME = 'booking' THEN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO journey_change (business_id, booking_id)
                VALUES (NEW.business_id, NEW.id);
            ELSE
                INSERT INTO journey_change (business_id, booking_id, starts_at)
                VALUES (OLD.business_id, OLD.id, OLD.starts_at);
            END IF;
            RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            IF OLD.booking_id IS NOT NULL THEN
                INSERT INTO journey_change (business_id, booking_id)
                VALUES (OLD.business_id, OLD.booking_id);
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN NULL;
            END IF;
            IF NEW.booking_id IS NOT DISTINCT FROM OLD.booking_id THEN
                RETURN NULL;
            END IF;
        END IF;
        IF NEW.booking_id IS NOT NULL THEN
            INSERT INTO journey_change (business_id, booking_id)
            VALUES (NEW.business_id, NEW.booking_id);
        END IF;
        RETURN NULL;
    END
$$
"""

FORWARDS = [
    """
    CREATE TABLE journey_day (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        day date NOT NULL,
        time_zone text NOT NULL,
        counted_by text NOT NULL,
        figures jsonb NOT NULL,
        confirmation_minutes double precision[] NOT NULL,
        built_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, day)
    )
    """,
    """
    CREATE TABLE journey_change (
        business_id uuid NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        booking_id uuid NOT NULL,
        starts_at timestamptz,
        PRIMARY KEY (business_id, id)
    )
    """,
    _JOURNEY_NOTE_CHANGE,
    # "booking.confirmed" rows are mostly from "pending": without this the planner
    # multiplies the two shares, expects 1/13 of the confirmations a day rebuild meets,
    # and drives that statement from the whole history table.
    "CREATE STATISTICS booking_history_event_from_status (mcv) ON event, from_status "
    "FROM booking_history",
    "ANALYZE booking_history",
    # Only the columns a figure reads: a booking's version bump or a message's retry
    # count leaves the summaries alone.
    """
    CREATE TRIGGER journey_note_change AFTER INSERT OR DELETE ON booking
    FOR EACH ROW EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change_update AFTER UPDATE ON booking
    FOR EACH ROW WHEN ((OLD.status, OLD.channel, OLD.change_count, OLD.starts_at,
                        OLD.created_at, OLD.service_id, OLD.staff_id)
                       IS DISTINCT FROM
                       (NEW.status, NEW.channel, NEW.change_count, NEW.starts_at,
                        NEW.created_at, NEW.service_id, NEW.staff_id))
    EXECUTE FUNCTION journey_note_change()
    """,
    # booking_history is append-only (booking_history_append_only).
    """
    CREATE TRIGGER journey_note_change AFTER INSERT ON booking_history
    FOR EACH ROW EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change AFTER INSERT OR DELETE ON message
    FOR EACH ROW EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change_update AFTER UPDATE ON message
    FOR EACH ROW WHEN ((OLD.booking_id, OLD.customer_id, OLD.template, OLD.status,
                        OLD.created_at, OLD.sent_at)
                       IS DISTINCT FROM
                       (NEW.booking_id, NEW.customer_id, NEW.template, NEW.status,
                        NEW.created_at, NEW.sent_at))
    EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change AFTER INSERT OR DELETE ON reschedule_offer
    FOR EACH ROW EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change_update AFTER UPDATE ON reschedule_offer
    FOR EACH ROW WHEN ((OLD.booking_id, OLD.kind, OLD.status, OLD.decided_at)
                       IS DISTINCT FROM (NEW.booking_id, NEW.kind, NEW.status, NEW.decided_at))
    EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change AFTER INSERT OR DELETE ON feedback
    FOR EACH ROW EXECUTE FUNCTION journey_note_change()
    """,
    """
    CREATE TRIGGER journey_note_change_update AFTER UPDATE ON feedback
    FOR EACH ROW WHEN ((OLD.booking_id, OLD.status, OLD.score, OLD.received_at)
                       IS DISTINCT FROM (NEW.booking_id, NEW.status, NEW.score, NEW.received_at))
    EXECUTE FUNCTION journey_note_change()
    """,
]

BACKWARDS = [
    "DROP TRIGGER journey_note_change_update ON feedback",
    "DROP TRIGGER journey_note_change ON feedback",
    "DROP TRIGGER journey_note_change_update ON reschedule_offer",
    "DROP TRIGGER journey_note_change ON reschedule_offer",
    "DROP TRIGGER journey_note_change_update ON message",
    "DROP TRIGGER journey_note_change ON message",
    "DROP TRIGGER journey_note_change ON booking_history",
    "DROP TRIGGER journey_note_change_update ON booking",
    "DROP TRIGGER journey_note_change ON booking",
    "DROP FUNCTION journey_note_change",
    "DROP STATISTICS booking_history_event_from_status",
    "DROP TABLE journey_change",
    "DROP TABLE journey_day",
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
