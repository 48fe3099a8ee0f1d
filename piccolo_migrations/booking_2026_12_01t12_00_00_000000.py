"""Ready to be distributed by business (Citus): every tenant row is keyed by its business.

A *tenant table* is one with a ``business_id``; on Citus each becomes a table
distributed by ``business_id`` and colocated with ``business`` (distributed by
its ``id``), so one business's rows live in one shard group and every statement
that names the business runs on one node. Citus enforces a key, a unique or an
exclusion constraint only when it includes the distribution column, and a
foreign key only when both sides pair their distribution columns. So:

* primary keys become ``(business_id, <old key>)``; a plain index on ``id``
  stays where the code looks a row up by id alone (one node: as fast as before;
  Citus: a query to every shard, listed in docs/scaling.md);
* ``business_id`` joins every unique constraint: reference codes, dedupe keys,
  provider ids and "one open offer per booking" are unique per business (the
  exclusion constraint ``allocation_no_overlap`` of 2026-12-01T11:00 has it already);
* ``booking`` and ``time_off`` had a ``UNIQUE (business_id, id)`` (11:00) for the
  allocation's foreign keys: it is their primary key now, so those keys fold into it;
* the link tables ``service_staff`` and ``reschedule_option`` carry
  ``business_id`` (backfilled from their service / offer); ``outbox`` and
  ``message`` rows must name their business (backfilled from their booking);
* foreign keys between tenant tables are composite ``(business_id, x_id)``;
  the two ``ON DELETE SET NULL`` ones (message.customer_id, reminder.message_id)
  become ``NO ACTION`` (Citus refuses SET NULL with the distribution column and
  nothing deletes those rows alone: customers and messages go only with their
  business's bookings, in the same statement);
* ``inbound_message`` (global: an SMS arrives before we know whose it is) keeps
  ``booking_id`` as a plain column without a foreign key.

The remembered-rules stamp (migration 2026-11-27T02:00) no longer comes from a
global sequence: a change to a rule table bumps ``config_version + 1`` on its
business's row, in the same transaction, from the tenant table's own trigger (on
Citus: the colocated shard of ``business``); a change to the business row bumps
it in a BEFORE trigger. Nothing volatile, nothing global, the same on every copy.
A new business starts its stamp at the microsecond clock, so a business deleted
and created again with the same id does not repeat an old stamp.

Backwards restores the previous keys, constraints, foreign keys and the sequence
stamp (continued above every stamp in use). It fails, changing nothing, when two
businesses now share a reference code, a dedupe key or a provider id.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant tables keyed by business (Citus-ready), stamp without a global sequence"

# table -> its primary key before this migration (business_id goes first after it).
PRIMARY_KEYS: dict[str, str] = {
    "staff": "id",
    "working_hours": "id",
    "time_off": "id",
    "service": "id",
    "service_staff": "service_id, staff_id",
    "customer": "id",
    "booking": "id",
    "booking_history": "id",
    "outbox": "id",
    "message": "id",
    "reminder": "id",
    "freed_slot": "id",
    "waitlist_entry": "id",
    "reschedule_offer": "id",
    "reschedule_option": "offer_id, position",
    "promise": "id",
}

# (table, column, referenced table, ON DELETE before, ON DELETE after): every foreign
# key between tenant tables; the constraint keeps its name ``{table}_{column}_fkey``.
FOREIGN_KEYS: list[tuple[str, str, str, str, str]] = [
    ("working_hours", "staff_id", "staff", "CASCADE", "CASCADE"),
    ("time_off", "staff_id", "staff", "CASCADE", "CASCADE"),
    ("service_staff", "service_id", "service", "CASCADE", "CASCADE"),
    ("service_staff", "staff_id", "staff", "CASCADE", "CASCADE"),
    ("booking", "staff_id", "staff", "NO ACTION", "NO ACTION"),
    ("booking", "service_id", "service", "NO ACTION", "NO ACTION"),
    ("booking", "customer_id", "customer", "NO ACTION", "NO ACTION"),
    ("booking_history", "booking_id", "booking", "NO ACTION", "NO ACTION"),
    ("message", "booking_id", "booking", "CASCADE", "CASCADE"),
    ("message", "customer_id", "customer", "SET NULL", "NO ACTION"),
    ("reminder", "booking_id", "booking", "CASCADE", "CASCADE"),
    ("reminder", "message_id", "message", "SET NULL", "NO ACTION"),
    ("freed_slot", "source_booking_id", "booking", "CASCADE", "CASCADE"),
    ("freed_slot", "staff_id", "staff", "CASCADE", "CASCADE"),
    ("waitlist_entry", "booking_id", "booking", "CASCADE", "CASCADE"),
    ("reschedule_offer", "booking_id", "booking", "CASCADE", "CASCADE"),
    ("reschedule_offer", "waitlist_entry_id", "waitlist_entry", "CASCADE", "CASCADE"),
    ("reschedule_offer", "freed_slot_id", "freed_slot", "CASCADE", "CASCADE"),
    ("reschedule_option", "offer_id", "reschedule_offer", "CASCADE", "CASCADE"),
    ("reschedule_option", "hold_id", "booking", "CASCADE", "CASCADE"),
    ("reschedule_option", "staff_id", "staff", "CASCADE", "CASCADE"),
    ("promise", "booking_id", "booking", "CASCADE", "CASCADE"),
]

# (table, constraint before, columns before, constraint after): unique constraints;
# after, each is the same columns with business_id first.
UNIQUES: list[tuple[str, str, str, str]] = [
    (
        "booking",
        "booking_reference_code_key",
        "reference_code",
        "booking_reference_code_per_business",
    ),
    ("message", "message_dedupe_key_key", "dedupe_key", "message_dedupe_key_per_business"),
    ("message", "message_provider_sid_key", "provider_sid", "message_provider_sid_per_business"),
    (
        "reminder",
        "reminder_booking_id_booking_starts_at_offset_minutes_key",
        "booking_id, booking_starts_at, offset_minutes",
        "reminder_once_per_business",
    ),
    ("freed_slot", "freed_slot_dedupe_key_key", "dedupe_key", "freed_slot_dedupe_key_per_business"),
    (
        "reschedule_option",
        "reschedule_option_hold_id_key",
        "hold_id",
        "reschedule_option_hold_per_business",
    ),
    ("promise", "promise_kind_subject_key", "kind, subject", "promise_subject_per_business"),
]

# (index, table, columns before, columns after, predicate): partial unique indexes.
UNIQUE_INDEXES: list[tuple[str, str, str, str, str]] = [
    (
        "waitlist_one_per_booking",
        "waitlist_entry",
        "booking_id",
        "business_id, booking_id",
        "status = 'waiting'",
    ),
    (
        "reschedule_offer_one_open",
        "reschedule_offer",
        "booking_id",
        "business_id, booking_id",
        "status = 'open'",
    ),
]

# Migration 2026-12-01T11:00 gave these tables a UNIQUE (business_id, id)
# ``{table}_business_id_id_key`` for the allocation's composite foreign keys; the primary
# key is that now, so the keys fold into it: (table, [(referencing table, column)]).
FOLDED_KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    ("booking", [("allocation", "booking_id")]),
    ("time_off", [("allocation", "time_off_id")]),
]

# Looked up by id alone (one node: an index scan; Citus: every shard, docs/scaling.md).
_ID_LOOKUPS = [table for table, key in PRIMARY_KEYS.items() if key == "id"]

_STAMP_DEFAULT = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

_TOUCH_NEW = """
    CREATE OR REPLACE FUNCTION business_config_touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.config_version = OLD.config_version THEN
            NEW.config_version := OLD.config_version + 1;
        END IF;
        RETURN NEW;
    END
    $$
"""
# Every rule table carries business_id now (service_staff included): the bump is a
# plain, deterministic update of the same business's row, colocated on Citus.
_BUMP_NEW = """
    CREATE OR REPLACE FUNCTION business_config_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE business SET config_version = config_version + 1 WHERE id = OLD.business_id;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.business_id <> OLD.business_id) THEN
            UPDATE business SET config_version = config_version + 1 WHERE id = NEW.business_id;
        END IF;
        RETURN NULL;
    END
    $$
"""
_TOUCH_OLD = """
    CREATE OR REPLACE FUNCTION business_config_touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.config_version = OLD.config_version THEN
            NEW.config_version := nextval('business_config_version_seq');
        END IF;
        RETURN NEW;
    END
    $$
"""
_BUMP_OLD = """
    CREATE OR REPLACE FUNCTION business_config_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        v_ids uuid[];
    BEGIN
        IF TG_TABLE_NAME = 'service_staff' THEN
            SELECT array_agg(s.business_id) INTO v_ids FROM service s
            WHERE s.id IN (
                CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.service_id END,
                CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.service_id END);
        ELSE
            v_ids := ARRAY[
                CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.business_id END,
                CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.business_id END];
        END IF;
        UPDATE business SET config_version = nextval('business_config_version_seq')
        WHERE id = ANY(v_ids);
        RETURN NULL;
    END
    $$
"""


def _drop_folded_foreign_keys() -> list[str]:
    return [
        f"ALTER TABLE {source} DROP CONSTRAINT {source}_business_id_{column}_fkey"
        for _, sources in FOLDED_KEYS
        for source, column in sources
    ]


def _add_folded_foreign_keys() -> list[str]:
    return [
        f"ALTER TABLE {source} ADD CONSTRAINT {source}_business_id_{column}_fkey "
        f"FOREIGN KEY (business_id, {column}) REFERENCES {table} (business_id, id) "
        "ON DELETE CASCADE"
        for table, sources in FOLDED_KEYS
        for source, column in sources
    ]


def _forwards() -> list[str]:
    steps: list[str] = [
        # Link tables name their business (the service's / the offer's).
        "ALTER TABLE service_staff ADD COLUMN business_id uuid",
        "UPDATE service_staff l SET business_id = s.business_id FROM service s "
        "WHERE s.id = l.service_id",
        "ALTER TABLE reschedule_option ADD COLUMN business_id uuid",
        "UPDATE reschedule_option l SET business_id = o.business_id FROM reschedule_offer o "
        "WHERE o.id = l.offer_id",
        # Outbox and message rows written without one get their booking's business.
        "UPDATE outbox o SET business_id = b.business_id FROM booking b "
        "WHERE o.business_id IS NULL AND b.id = o.aggregate_id",
        "UPDATE message m SET business_id = b.business_id FROM booking b "
        "WHERE m.business_id IS NULL AND b.id = m.booking_id",
        "UPDATE message m SET business_id = c.business_id FROM customer c "
        "WHERE m.business_id IS NULL AND c.id = m.customer_id",
    ]
    for table in ("service_staff", "reschedule_option", "outbox", "message"):
        steps.append(f"ALTER TABLE {table} ALTER COLUMN business_id SET NOT NULL")
    for table in ("service_staff", "reschedule_option"):
        steps.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_business_id_fkey "
            "FOREIGN KEY (business_id) REFERENCES business (id) ON DELETE CASCADE"
        )
    # Drop what depends on the old keys, re-key, then put it back per business.
    steps.append("ALTER TABLE inbound_message DROP CONSTRAINT inbound_message_booking_id_fkey")
    for table, column, _, _, _ in FOREIGN_KEYS:
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fkey")
    steps += _drop_folded_foreign_keys()
    for table, _ in FOLDED_KEYS:
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {table}_business_id_id_key")
    for table, key in PRIMARY_KEYS.items():
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        steps.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (business_id, {key})"
        )
    for table in _ID_LOOKUPS:
        steps.append(f"CREATE INDEX {table}_id_idx ON {table} (id)")
    # The Twilio status callback finds a message by provider sid alone.
    steps.append("CREATE INDEX message_provider_sid_idx ON message (provider_sid)")
    for table, name, columns, new_name in UNIQUES:
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        steps.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {new_name} UNIQUE (business_id, {columns})"
        )
    for index, table, _, after, where in UNIQUE_INDEXES:
        steps.append(f"DROP INDEX {index}")
        steps.append(f"CREATE UNIQUE INDEX {index} ON {table} ({after}) WHERE {where}")
    for table, column, target, _, on_delete in FOREIGN_KEYS:
        steps.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey "
            f"FOREIGN KEY (business_id, {column}) REFERENCES {target} (business_id, id) "
            f"ON DELETE {on_delete}"
        )
    steps += _add_folded_foreign_keys()
    # The stamp: per business, bumped in the same transaction, no global sequence.
    steps += [
        f"ALTER TABLE business ALTER COLUMN config_version SET DEFAULT {_STAMP_DEFAULT}",
        _TOUCH_NEW,
        _BUMP_NEW,
        "DROP SEQUENCE business_config_version_seq",
    ]
    return steps


def _backwards() -> list[str]:
    steps: list[str] = [
        "CREATE SEQUENCE business_config_version_seq",
        "SELECT setval('business_config_version_seq', "
        "greatest((SELECT max(config_version) FROM business), 1))",
        "ALTER TABLE business ALTER COLUMN config_version "
        "SET DEFAULT nextval('business_config_version_seq')",
        _TOUCH_OLD,
        _BUMP_OLD,
    ]
    for table, column, _, _, _ in FOREIGN_KEYS:
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fkey")
    steps += _drop_folded_foreign_keys()
    for index, table, before, _, where in UNIQUE_INDEXES:
        steps.append(f"DROP INDEX {index}")
        steps.append(f"CREATE UNIQUE INDEX {index} ON {table} ({before}) WHERE {where}")
    for table, name, before, new_name in UNIQUES:
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {new_name}")
        steps.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({before})")
    steps.append("DROP INDEX message_provider_sid_idx")
    for table in _ID_LOOKUPS:
        steps.append(f"DROP INDEX {table}_id_idx")
    for table, key in PRIMARY_KEYS.items():
        steps.append(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        steps.append(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
    for table, _ in FOLDED_KEYS:
        steps.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_business_id_id_key "
            "UNIQUE (business_id, id)"
        )
    steps += _add_folded_foreign_keys()
    for table, column, target, on_delete, _ in FOREIGN_KEYS:
        steps.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey "
            f"FOREIGN KEY ({column}) REFERENCES {target} (id) ON DELETE {on_delete}"
        )
    steps += [
        "ALTER TABLE inbound_message ADD CONSTRAINT inbound_message_booking_id_fkey "
        "FOREIGN KEY (booking_id) REFERENCES booking (id) ON DELETE SET NULL",
        "ALTER TABLE outbox ALTER COLUMN business_id DROP NOT NULL",
        "ALTER TABLE message ALTER COLUMN business_id DROP NOT NULL",
        "ALTER TABLE reschedule_option DROP COLUMN business_id",
        "ALTER TABLE service_staff DROP COLUMN business_id",
    ]
    return steps


FORWARDS = _forwards()
BACKWARDS = _backwards()


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
