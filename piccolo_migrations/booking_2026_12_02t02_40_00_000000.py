"""Group sessions with seats: capacity guaranteed by the database (issue 12).

* ``session``: a group service's scheduled class (time, member of staff, optional room,
  capacity, ``seats_taken``). It holds its staff and room under ``allocation_no_overlap``
  like a booking (trigger ``session_allocations_sync``, allocation kind ``session``).
* ``booking.session_id`` / ``booking.seats``: a seat booking (party size) in a session.
  It holds no allocation of its own (``booking_allocations_sync`` skips it); its seats
  are counted on the session's row by the trigger ``session_seats_sync`` while its
  status holds time (holds included), and ``session_seats_within_capacity``
  (``seats_taken BETWEEN 0 AND capacity``) refuses the seat that does not fit - for
  every writer, raw SQL included. ``session_seats_guard`` keeps the counter the
  bookings' own: a direct UPDATE of ``seats_taken`` is refused.
* ``service.group_capacity``: a group service (the default capacity of its sessions).
* ``booking_place_seats``: the one-statement write of a seat booking or hold.

Function texts are frozen copies of ``src/booking/bookings/sql/``. Backwards drops it
all and restores ``booking_allocations_sync`` as it was. Self-contained: raw SQL only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T02:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "group sessions with seats: session table, seat counter with CHECK, triggers"

_BOOKING_ALLOCATIONS_SYNC = """
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
_OLD_BOOKING_ALLOCATIONS_SYNC = """
-- Trigger on booking (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a booking's allocations follow its row, in the same statement, whoever writes it.
-- kind 'staff' is the member of staff; kind 'resource' the room/chair/device if any.
-- Moving (staff, resource or time) replaces the allocations: the new place is checked
-- by allocation_no_overlap and the old one released by the same update. A status change only
-- flips ``active``; an allocation a block took (``lost``) stays inactive until moved.
CREATE OR REPLACE FUNCTION booking_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := booking_holds_time(NEW.status);
    BEGIN
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
_SESSION_SEATS_SYNC = """
-- Trigger on booking (AFTER INSERT, DELETE, UPDATE of status, seats or session): the
-- seats a booking takes in a group session are counted on the session's row, in the
-- same statement, whoever writes the booking (API, sweeper, raw SQL). A booking holds
-- its seats while its status holds time (holds included, until they expire). The
-- counter's CHECK (session_seats_within_capacity: seats_taken <= capacity) is what
-- refuses the 13th seat; the row lock this UPDATE takes serializes the writers of one
-- session. Moving between sessions releases and takes in one statement, locking the two
-- sessions in id order so two opposite moves cannot deadlock.
CREATE OR REPLACE FUNCTION session_seats_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_old integer := 0;
        v_new integer := 0;
        v_business uuid;
        v_id uuid;
        v_delta integer;
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.session_id IS NOT NULL
           AND booking_holds_time(OLD.status) THEN
            v_old := OLD.seats;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.session_id IS NOT NULL
           AND booking_holds_time(NEW.status) THEN
            v_new := NEW.seats;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.session_id IS NOT DISTINCT FROM NEW.session_id THEN
            IF v_new = v_old THEN
                RETURN NULL;
            END IF;
            UPDATE session SET seats_taken = seats_taken + v_new - v_old
            WHERE business_id = NEW.business_id AND id = NEW.session_id
              AND (v_new < v_old OR status = 'scheduled');
            IF NOT FOUND THEN
                RAISE EXCEPTION 'session % is not open for booking', NEW.session_id
                    USING ERRCODE = 'BK002';
            END IF;
            RETURN NULL;
        END IF;
        FOR v_business, v_id, v_delta IN
            SELECT s.business_id, s.id, s.delta FROM (
                SELECT OLD.business_id AS business_id, OLD.session_id AS id, -v_old AS delta
                WHERE v_old > 0
                UNION ALL
                SELECT NEW.business_id, NEW.session_id, v_new WHERE v_new > 0) s
            ORDER BY s.id
        LOOP
            UPDATE session SET seats_taken = seats_taken + v_delta
            WHERE business_id = v_business AND id = v_id
              AND (v_delta < 0 OR status = 'scheduled');
            IF NOT FOUND THEN
                RAISE EXCEPTION 'session % is not open for booking', v_id
                    USING ERRCODE = 'BK002';
            END IF;
        END LOOP;
        RETURN NULL;
    END
$$
"""
_SESSION_SEATS_GUARD = """
-- Trigger on session (BEFORE INSERT OR UPDATE): seats_taken is the count of its
-- bookings' seats and only session_seats_sync writes it. A new session starts empty;
-- a direct UPDATE of the counter (not from inside the booking trigger) is refused, so
-- raw SQL cannot open seats that bookings hold.
CREATE OR REPLACE FUNCTION session_seats_guard() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            NEW.seats_taken := 0;
        ELSIF NEW.seats_taken <> OLD.seats_taken AND pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'session.seats_taken is kept by its bookings'
                USING ERRCODE = 'BK003';
        END IF;
        RETURN NEW;
    END
$$
"""
_SESSION_ALLOCATIONS_SYNC = """
-- Trigger on session (AFTER INSERT, AFTER UPDATE of staff, resource, time or status):
-- a group session holds its member of staff and its room (if any) for its whole
-- range under allocation_no_overlap, like a booking does; its seat bookings hold
-- none of their own (booking_allocations_sync skips them). A cancelled session
-- releases its time; a moved one is checked at its new place.
CREATE OR REPLACE FUNCTION session_allocations_sync() RETURNS trigger
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_during tstzrange := tstzrange(NEW.blocked_from, NEW.blocked_until, '[)');
        v_active boolean := NEW.status = 'scheduled';
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM allocation WHERE business_id = NEW.business_id AND session_id = NEW.id;
        END IF;
        INSERT INTO allocation (business_id, resource_id, kind, session_id, during, active)
        SELECT NEW.business_id, r, 'session', NEW.id, v_during, v_active
        FROM unnest(ARRAY[NEW.staff_id, NEW.resource_id]) r WHERE r IS NOT NULL;
        RETURN NULL;
    END
$$
"""
_BOOKING_PLACE_SEATS = """
-- Seats in a group session for a new booking or hold, in one statement. Called with
-- named arguments from booking.bookings.store.insert_seats.
--
-- * holds on the session past their expiry are expired first (the lazy release);
-- * the customer (validated by the caller) is upserted;
-- * the row is inserted at the session's time with its staff and room; the seats are
--   counted by its trigger (session_seats_sync), whose CHECK refuses them when the
--   session is full (23514, session_seats_within_capacity) - the caller maps it;
-- * a reference-code clash tries the next of p_codes (ON CONFLICT, no subtransaction);
-- * the history event and, when p_outbox_payload is given, the outbox row are
--   appended as booking.bookings.store.record_event writes them.
-- No row when the session does not exist in the business.
CREATE OR REPLACE FUNCTION booking_place_seats(
    p_business_id uuid, p_session_id uuid, p_seats integer,
    p_status text, p_channel text, p_codes text[], p_event text,
    p_actor_type text, p_actor_id text, p_created_by text,
    p_customer_id uuid DEFAULT NULL, p_partner_id uuid DEFAULT NULL,
    p_customer_name text DEFAULT NULL, p_customer_phone text DEFAULT NULL,
    p_customer_locale text DEFAULT NULL,
    p_hold_expires_at timestamptz DEFAULT NULL, p_hold_token_hash bytea DEFAULT NULL,
    p_notes text DEFAULT '', p_outbox_payload jsonb DEFAULT NULL
) RETURNS SETOF booking
    LANGUAGE plpgsql
AS $$
    DECLARE
        v_customer uuid := p_customer_id;
        v_session session;
        v_code text;
        v_row booking;
    BEGIN
        SELECT * INTO v_session FROM session
        WHERE business_id = p_business_id AND id = p_session_id;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        WITH released AS (
            UPDATE booking SET status = 'expired', version = version + 1, updated_at = now(),
                   hold_token_hash = NULL
            WHERE business_id = p_business_id AND session_id = p_session_id
              AND status = 'held' AND hold_expires_at <= now()
            RETURNING id, business_id, status
        )
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        SELECT id, business_id, 'hold.expired', 'held', status, 'system', 'hold-release',
               'system', '{}'::jsonb, NULL, false
        FROM released;
        IF p_customer_phone IS NOT NULL THEN
            INSERT INTO customer (business_id, name, phone, locale)
            VALUES (p_business_id, p_customer_name, p_customer_phone, p_customer_locale)
            ON CONFLICT (business_id, phone) DO UPDATE SET locale = EXCLUDED.locale
            RETURNING id INTO v_customer;
        END IF;
        FOREACH v_code IN ARRAY p_codes LOOP
            INSERT INTO booking (business_id, staff_id, resource_id, service_id, session_id,
                seats, customer_id, partner_id, status, channel, reference_code, starts_at,
                ends_at, blocked_from, blocked_until, hold_expires_at, hold_token_hash, notes,
                created_by)
            VALUES (p_business_id, v_session.staff_id, v_session.resource_id,
                v_session.service_id, p_session_id, p_seats, v_customer, p_partner_id,
                p_status, p_channel, v_code, v_session.starts_at, v_session.ends_at,
                v_session.blocked_from, v_session.blocked_until, p_hold_expires_at,
                p_hold_token_hash, p_notes, p_created_by)
            ON CONFLICT (business_id, reference_code) DO NOTHING
            RETURNING * INTO v_row;
            EXIT WHEN v_row.id IS NOT NULL;
        END LOOP;
        IF v_row.id IS NULL THEN
            RAISE EXCEPTION 'no free reference code among %', p_codes
                USING ERRCODE = 'unique_violation';
        END IF;
        INSERT INTO booking_history (booking_id, business_id, event, from_status, to_status,
            actor_type, actor_id, channel, changes, reason, policy_override)
        VALUES (v_row.id, v_row.business_id, p_event, NULL, v_row.status, p_actor_type,
            p_actor_id, p_channel, jsonb_build_object('seats', v_row.seats), NULL, false);
        IF p_outbox_payload IS NOT NULL THEN
            INSERT INTO outbox (business_id, topic, aggregate_id, payload)
            VALUES (v_row.business_id, p_event, v_row.id,
                p_outbox_payload || jsonb_build_object(
                    'booking_id', v_row.id::text, 'version', v_row.version,
                    'status', v_row.status, 'starts_at', v_row.starts_at,
                    'session_id', p_session_id::text, 'seats', v_row.seats));
        END IF;
        RETURN NEXT v_row;
    END
$$
"""

FORWARDS = [
    """
    ALTER TABLE service ADD COLUMN group_capacity integer
        CHECK (group_capacity IS NULL OR group_capacity BETWEEN 1 AND 1000)
    """,
    """
    CREATE TABLE session (
        business_id uuid NOT NULL REFERENCES business (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        service_id uuid NOT NULL,
        staff_id uuid NOT NULL,
        resource_id uuid,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        blocked_from timestamptz NOT NULL,
        blocked_until timestamptz NOT NULL,
        capacity integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
        seats_taken integer NOT NULL DEFAULT 0,
        status text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_id, id),
        FOREIGN KEY (business_id, service_id) REFERENCES service (business_id, id)
            ON DELETE CASCADE,
        FOREIGN KEY (business_id, staff_id) REFERENCES staff (business_id, id),
        FOREIGN KEY (business_id, resource_id) REFERENCES resource (business_id, id),
        CONSTRAINT session_seats_within_capacity CHECK (seats_taken BETWEEN 0 AND capacity),
        CONSTRAINT session_time_order CHECK (ends_at > starts_at),
        CONSTRAINT session_blocked_covers
            CHECK (blocked_from <= starts_at AND blocked_until >= ends_at)
    )
    """,
    "CREATE INDEX session_service_start_idx ON session (business_id, service_id, starts_at)",
    # the availability search reads a teacher's classes as busy time by staff id
    "CREATE INDEX session_staff_busy_idx ON session (staff_id, blocked_from) "
    "WHERE status = 'scheduled'",
    "ALTER TABLE booking ADD COLUMN session_id uuid",
    "ALTER TABLE booking ADD COLUMN seats integer NOT NULL DEFAULT 1 "
    "CONSTRAINT booking_seats_range CHECK (seats BETWEEN 1 AND 1000)",
    """
    ALTER TABLE booking ADD CONSTRAINT booking_session_id_fkey
        FOREIGN KEY (business_id, session_id) REFERENCES session (business_id, id)
    """,
    "CREATE INDEX booking_session_idx ON booking (business_id, session_id) "
    "WHERE session_id IS NOT NULL",
    "ALTER TABLE allocation ADD COLUMN session_id uuid",
    """
    ALTER TABLE allocation ADD CONSTRAINT allocation_session_id_fkey
        FOREIGN KEY (business_id, session_id) REFERENCES session (business_id, id)
        ON DELETE CASCADE
    """,
    "ALTER TABLE allocation DROP CONSTRAINT allocation_kind_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_kind_check "
    "CHECK (kind IN ('staff', 'resource', 'block', 'session'))",
    "ALTER TABLE allocation DROP CONSTRAINT allocation_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_owner_check "
    "CHECK ((kind IN ('block', 'session')) = (booking_id IS NULL) "
    "AND (kind = 'session') = (session_id IS NOT NULL))",
    _BOOKING_ALLOCATIONS_SYNC,
    _SESSION_SEATS_SYNC,
    _SESSION_SEATS_GUARD,
    _SESSION_ALLOCATIONS_SYNC,
    _BOOKING_PLACE_SEATS,
    """
    CREATE TRIGGER session_seats_guard BEFORE INSERT OR UPDATE ON session
    FOR EACH ROW EXECUTE FUNCTION session_seats_guard()
    """,
    """
    CREATE TRIGGER session_allocations_insert AFTER INSERT ON session
    FOR EACH ROW EXECUTE FUNCTION session_allocations_sync()
    """,
    """
    CREATE TRIGGER session_allocations_update
    AFTER UPDATE OF staff_id, resource_id, blocked_from, blocked_until, status ON session
    FOR EACH ROW WHEN (
        OLD.staff_id IS DISTINCT FROM NEW.staff_id
        OR OLD.resource_id IS DISTINCT FROM NEW.resource_id
        OR OLD.blocked_from IS DISTINCT FROM NEW.blocked_from
        OR OLD.blocked_until IS DISTINCT FROM NEW.blocked_until
        OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION session_allocations_sync()
    """,
    """
    CREATE TRIGGER session_seats_sync
    AFTER INSERT OR DELETE OR UPDATE OF status, seats, session_id ON booking
    FOR EACH ROW EXECUTE FUNCTION session_seats_sync()
    """,
]

BACKWARDS = [
    # Going back would leave these rows holding no time: refuse rather than guess.
    """
    DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM booking WHERE session_id IS NOT NULL) THEN
            RAISE EXCEPTION 'seat bookings exist: remove them before migrating back';
        END IF;
    END $$
    """,
    "DROP TRIGGER session_seats_sync ON booking",
    "DROP FUNCTION booking_place_seats",
    "DROP FUNCTION session_seats_sync",
    "DELETE FROM allocation WHERE kind = 'session'",
    "ALTER TABLE allocation DROP CONSTRAINT allocation_owner_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_check "
    "CHECK ((kind = 'block') = (booking_id IS NULL))",
    "ALTER TABLE allocation DROP CONSTRAINT allocation_kind_check",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_kind_check "
    "CHECK (kind IN ('staff', 'resource', 'block'))",
    "ALTER TABLE allocation DROP COLUMN session_id",
    "ALTER TABLE booking DROP COLUMN seats",
    "ALTER TABLE booking DROP COLUMN session_id",
    "DROP TABLE session",
    "DROP FUNCTION session_allocations_sync",
    "DROP FUNCTION session_seats_guard",
    "ALTER TABLE service DROP COLUMN group_capacity",
    _OLD_BOOKING_ALLOCATIONS_SYNC,
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
