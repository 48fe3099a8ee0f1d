"""Sequences (issue 12): one visit made of ordered segments, each holding its own staff.

* ``booking.is_sequence``: the booking row of a visit (the whole span, first segment's
  service and staff, one reference code). It holds no allocation of its own
  (``booking_allocations_sync`` skips its insert and moves; a status change still flips
  every allocation carrying its id).
* ``booking_segment (business_id, id)``: one service of the visit at its own time, with
  its own member of staff and optional resource; its allocations (kind ``segment``,
  ``segment_id`` and the booking's id) follow it by trigger ``booking_segment_sync``
  under ``allocation_no_overlap``.
* The unique index ``allocation_booking_kind`` leaves segments out (a visit has one
  allocation per segment and resource: ``allocation_segment_resource``).

Function texts are frozen copies of ``src/booking/bookings/sql/``. Backwards drops it
all and restores ``booking_allocations_sync`` as the sessions migration left it.
Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:42:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sequences: booking_segment table, segment allocations, booking.is_sequence"

_BOOKING_ALLOCATIONS_SYNC = """
-- Trigger on booking (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a booking's allocations follow its row, in the same statement, whoever writes it.
-- kind 'staff' is the member of staff; kind 'resource' the room/chair/device if any.
-- Moving (staff, resource or time) replaces the allocations: the new place is checked
-- by allocation_no_overlap and the old one released by the same update. A status change only
-- flips ``active``; an allocation a block took (``lost``) stays inactive until moved.
-- A seat in a group session holds no allocation of its own: the session holds its
-- staff and room (session_allocations_sync), the seats are counted (session_seats_sync).
-- A sequence's row (is_sequence) holds none either: each segment holds its own
-- (booking_segment_sync); a status change of the row flips them all.
CREATE OR REPLACE FUNCTION booking_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := booking_holds_time(NEW.status);
    BEGIN
        IF NEW.session_id IS NOT NULL THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
            IF NEW.is_sequence THEN
                RETURN NULL;
            END IF;
            INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
            VALUES (NEW.business_id, NEW.staff_id, 'staff', NEW.id, v_during, v_active);
            IF NEW.resource_id IS NOT NULL THEN
                INSERT INTO allocation (business_id, resource_id, kind, booking_id, during,
                    active)
                VALUES (NEW.business_id, NEW.resource_id, 'resource', NEW.id, v_during,
                    v_active);
            END IF;
            RETURN NULL;
        END IF;
        IF NEW.is_sequence OR (NEW.staff_id = OLD.staff_id
           AND NEW.resource_id IS NOT DISTINCT FROM OLD.resource_id
           AND NEW.blocked_from = OLD.blocked_from AND NEW.blocked_until = OLD.blocked_until) THEN
            UPDATE allocation SET active = v_active AND NOT lost
            WHERE business_id = NEW.business_id AND booking_id = NEW.id;
            RETURN NULL;
        END IF;
        -- Moved: each allocation row moves with it (its old place is released by the
        -- same update, so a move onto time overlapping its own old place is fine).
        UPDATE allocation SET resource_id = NEW.staff_id, during = v_during,
            active = v_active, lost = false
        WHERE business_id = NEW.business_id AND booking_id = NEW.id AND kind = 'staff';
        IF NEW.resource_id IS NULL THEN
            DELETE FROM allocation
            WHERE business_id = NEW.business_id AND booking_id = NEW.id AND kind = 'resource';
        ELSIF OLD.resource_id IS NULL THEN
            INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
            VALUES (NEW.business_id, NEW.resource_id, 'resource', NEW.id, v_during, v_active);
        ELSE
            UPDATE allocation SET resource_id = NEW.resource_id, during = v_during,
                active = v_active, lost = false
            WHERE business_id = NEW.business_id AND booking_id = NEW.id
              AND kind = 'resource';
        END IF;
        RETURN NULL;
    END
$$
"""
_OLD_BOOKING_ALLOCATIONS_SYNC = """
-- Trigger on booking (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a booking's allocations follow its row, in the same statement, whoever writes it.
-- kind 'staff' is the member of staff; kind 'resource' the room/chair/device if any.
-- Moving (staff, resource or time) replaces the allocations: the new place is checked
-- by allocation_no_overlap and the old one released by the same update. A status change only
-- flips ``active``; an allocation a block took (``lost``) stays inactive until moved.
-- A seat in a group session holds no allocation of its own: the session holds its
-- staff and room (session_allocations_sync), the seats are counted (session_seats_sync).
CREATE OR REPLACE FUNCTION booking_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := booking_holds_time(NEW.status);
    BEGIN
        IF NEW.session_id IS NOT NULL THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
            INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
            VALUES (NEW.business_id, NEW.staff_id, 'staff', NEW.id, v_during, v_active);
            IF NEW.resource_id IS NOT NULL THEN
                INSERT INTO allocation (business_id, resource_id, kind, booking_id, during,
                    active)
                VALUES (NEW.business_id, NEW.resource_id, 'resource', NEW.id, v_during,
                    v_active);
            END IF;
            RETURN NULL;
        END IF;
        IF NEW.staff_id = OLD.staff_id AND NEW.resource_id IS NOT DISTINCT FROM OLD.resource_id
           AND NEW.blocked_from = OLD.blocked_from AND NEW.blocked_until = OLD.blocked_until THEN
            UPDATE allocation SET active = v_active AND NOT lost
            WHERE business_id = NEW.business_id AND booking_id = NEW.id;
            RETURN NULL;
        END IF;
        -- Moved: each allocation row moves with it (its old place is released by the
        -- same update, so a move onto time overlapping its own old place is fine).
        UPDATE allocation SET resource_id = NEW.staff_id, during = v_during,
            active = v_active, lost = false
        WHERE business_id = NEW.business_id AND booking_id = NEW.id AND kind = 'staff';
        IF NEW.resource_id IS NULL THEN
            DELETE FROM allocation
            WHERE business_id = NEW.business_id AND booking_id = NEW.id AND kind = 'resource';
        ELSIF OLD.resource_id IS NULL THEN
            INSERT INTO allocation (business_id, resource_id, kind, booking_id, during, active)
            VALUES (NEW.business_id, NEW.resource_id, 'resource', NEW.id, v_during, v_active);
        ELSE
            UPDATE allocation SET resource_id = NEW.resource_id, during = v_during,
                active = v_active, lost = false
            WHERE business_id = NEW.business_id AND booking_id = NEW.id
              AND kind = 'resource';
        END IF;
        RETURN NULL;
    END
$$
"""
_BOOKING_SEGMENT_SYNC = """
-- Trigger on booking_segment (AFTER INSERT, DELETE, UPDATE of staff, resource or time):
-- each segment of a sequence holds its own member of staff (and room/chair/device) for
-- its own range under allocation_no_overlap (allocation kind 'segment', carrying the
-- booking's id so a status change of the booking flips them all, see
-- booking_allocations_sync). The booking row of a sequence holds nothing itself.
CREATE OR REPLACE FUNCTION booking_segment_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_active boolean;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM allocation WHERE business_id = OLD.business_id AND segment_id = OLD.id;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN NULL;
        END IF;
        SELECT booking_holds_time(status) INTO v_active FROM booking
        WHERE business_id = NEW.business_id AND id = NEW.booking_id;
        INSERT INTO allocation (business_id, resource_id, kind, booking_id, segment_id, during,
            active)
        SELECT NEW.business_id, r, 'segment', NEW.booking_id, NEW.id,
               tstzrange(NEW.blocked_from, NEW.blocked_until, '[)'), v_active
        FROM unnest(ARRAY[NEW.staff_id, NEW.resource_id]) r WHERE r IS NOT NULL;
        RETURN NULL;
    END
$$
"""

FORWARDS = [
    "ALTER TABLE booking ADD COLUMN is_sequence boolean NOT NULL DEFAULT false",
    """
    CREATE TABLE booking_segment (
        business_id uuid NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        booking_id uuid NOT NULL,
        position smallint NOT NULL CHECK (position BETWEEN 1 AND 5),
        service_id uuid NOT NULL,
        staff_id uuid NOT NULL,
        resource_id uuid,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        blocked_from timestamptz NOT NULL,
        blocked_until timestamptz NOT NULL,
        PRIMARY KEY (business_id, id),
        CONSTRAINT booking_segment_position UNIQUE (business_id, booking_id, position),
        FOREIGN KEY (business_id, booking_id) REFERENCES booking (business_id, id)
            ON DELETE CASCADE,
        FOREIGN KEY (business_id, service_id) REFERENCES service (business_id, id),
        FOREIGN KEY (business_id, staff_id) REFERENCES staff (business_id, id),
        FOREIGN KEY (business_id, resource_id) REFERENCES resource (business_id, id),
        CONSTRAINT booking_segment_time_order CHECK (ends_at > starts_at),
        CONSTRAINT booking_segment_blocked_covers
            CHECK (blocked_from <= starts_at AND blocked_until >= ends_at)
    )
    """,
    # the availability search reads a member of staff's segments as busy time
    "CREATE INDEX booking_segment_staff_idx ON booking_segment (staff_id, blocked_from)",
    "ALTER TABLE allocation ADD COLUMN segment_id uuid",
    """
    ALTER TABLE allocation ADD CONSTRAINT allocation_segment_id_fkey
        FOREIGN KEY (business_id, segment_id) REFERENCES booking_segment (business_id, id)
        ON DELETE CASCADE
    """,
    "ALTER TABLE allocation DROP CONSTRAINT allocation_kind_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_kind_check "
    "CHECK (kind IN ('staff', 'resource', 'block', 'session', 'segment'))",
    "ALTER TABLE allocation DROP CONSTRAINT allocation_owner_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_owner_check "
    "CHECK ((kind IN ('block', 'session')) = (booking_id IS NULL) "
    "AND (kind = 'session') = (session_id IS NOT NULL) "
    "AND (kind = 'segment') = (segment_id IS NOT NULL))",
    "DROP INDEX allocation_booking_kind",
    "CREATE UNIQUE INDEX allocation_booking_kind ON allocation (business_id, booking_id, kind) "
    "WHERE booking_id IS NOT NULL AND kind <> 'segment'",
    "CREATE UNIQUE INDEX allocation_segment_resource ON allocation "
    "(business_id, segment_id, resource_id) WHERE segment_id IS NOT NULL",
    _BOOKING_ALLOCATIONS_SYNC,
    _BOOKING_SEGMENT_SYNC,
    """
    CREATE TRIGGER booking_segment_sync
    AFTER INSERT OR DELETE OR UPDATE OF staff_id, resource_id, blocked_from, blocked_until
    ON booking_segment FOR EACH ROW EXECUTE FUNCTION booking_segment_sync()
    """,
]

BACKWARDS = [
    # Going back would leave these rows holding no time: refuse rather than guess.
    """
    DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM booking WHERE is_sequence) THEN
            RAISE EXCEPTION 'sequences (visits) exist: remove them before migrating back';
        END IF;
    END $$
    """,
    "DROP TRIGGER booking_segment_sync ON booking_segment",
    "DROP INDEX allocation_segment_resource",
    "DROP INDEX allocation_booking_kind",
    "CREATE UNIQUE INDEX allocation_booking_kind ON allocation (business_id, booking_id, kind) "
    "WHERE booking_id IS NOT NULL",
    "ALTER TABLE allocation DROP CONSTRAINT allocation_owner_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_owner_check "
    "CHECK ((kind IN ('block', 'session')) = (booking_id IS NULL) "
    "AND (kind = 'session') = (session_id IS NOT NULL))",
    "ALTER TABLE allocation DROP CONSTRAINT allocation_kind_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_kind_check "
    "CHECK (kind IN ('staff', 'resource', 'block', 'session'))",
    "ALTER TABLE allocation DROP COLUMN segment_id",
    "DROP TABLE booking_segment",
    "DROP FUNCTION booking_segment_sync",
    _OLD_BOOKING_ALLOCATIONS_SYNC,
    "ALTER TABLE booking DROP COLUMN is_sequence",
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
