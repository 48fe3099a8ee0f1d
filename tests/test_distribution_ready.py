"""The schema stays ready to be distributed by business (Citus), whoever adds a table.

Read from the catalog of the migrated test database, so a table another
migration adds later is checked too. A *tenant table* is any table with a
``business_id`` column: on Citus it is distributed by ``business_id``, colocated
with ``business`` (distributed by its ``id``). Citus enforces a key, a unique or
an exclusion constraint only when it contains the distribution column, and a
foreign key between distributed tables only when it pairs their distribution
columns; it refuses ``ON DELETE SET NULL / SET DEFAULT`` that would touch the
distribution column, and a reference or coordinator-local table may not point
at a distributed one. Every other table must be named below, with the reason it
is global (docs/scaling.md says how each is created on Citus).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from booking import db

# The colocation root: distributed by its own id (= every tenant row's business_id).
ROOT = "business"
# Its one constraint that cannot hold on Citus: slugs are unique across businesses.
# One node enforces it; on Citus the operator drops it (docs/scaling.md) and the
# primary key of the coordinator table business_slug guards it (every business is
# created through it). Nothing else may join this list.
ROOT_GLOBAL_UNIQUES = {"business_slug_key"}

REFERENCE_TABLES = {
    # booking.partner_id points at it (a distributed table may reference a reference
    # table); a handful of rows, read on every partner request, written by an operator.
    "partner": "bookings reference it; tiny, read everywhere",
}
COORDINATOR_TABLES = {
    # Global rows that belong to no business; they live on the coordinator
    # (citus_add_local_table_to_metadata) and no tenant table points at them.
    "api_key": "authenticates before the business is known; a key may span businesses",
    "webhook_endpoint": "belongs to a partner, who spans businesses",
    "webhook_delivery": "one per (outbox event, partner endpoint); the relay fans out",
    "webhook_attempt": "the attempts of a webhook_delivery",
    "inbound_message": "an SMS arrives before anyone knows whose it is (matched by phone)",
    "business_slug": "slugs are unique across businesses: one global key, on one node",
    "staff_sign_in": "a console sign-in code, typed before the business is known (its key's)",
    "staff_session": "a console session cookie, read before the business is known (its key's)",
    "migration": "Piccolo's own bookkeeping, applied on the coordinator",
}
OWN_DISTRIBUTION = {
    # Distributed by another column, in its own colocation group.
    "idempotency_record": "principal",
}
GLOBAL_TABLES = {*REFERENCE_TABLES, *COORDINATOR_TABLES, *OWN_DISTRIBUTION}


@pytest.fixture
async def conn(db_pool: None) -> AsyncIterator[asyncpg.Connection]:
    async with db.connection() as connection:
        yield connection


async def tables(conn: asyncpg.Connection) -> dict[str, bool]:
    """Every public table -> whether it has a business_id (is a tenant table)."""
    rows = await conn.fetch(
        """
        SELECT c.relname AS name,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'business_id' AND NOT a.attisdropped) AS tenant
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        """
    )
    return {row["name"]: row["tenant"] for row in rows}


def distribution_column(table: str, tenant: bool) -> str | None:
    if table == ROOT:
        return "id"
    if tenant:
        return "business_id"
    return OWN_DISTRIBUTION.get(table)


async def unclassified(conn: asyncpg.Connection) -> list[str]:
    return [
        f"{name}: no business_id and not listed as a global table"
        for name, tenant in (await tables(conn)).items()
        if not tenant and name != ROOT and name not in GLOBAL_TABLES
    ]


async def nullable_business_ids(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_name = 'business_id' AND is_nullable = 'YES'"
    )
    return [f"{row['table_name']}.business_id is nullable" for row in rows]


async def keys_without_distribution_column(conn: asyncpg.Connection) -> list[str]:
    """Primary keys, unique and exclusion constraints, unique indexes (partial ones
    included) of distributed tables that lack the distribution column (for an
    exclusion constraint: compared with ``=``)."""
    problems: list[str] = []
    rows = await conn.fetch(
        """
        SELECT t.relname AS tbl, i.relname AS idx, x.indisprimary AS is_primary,
               con.conname, con.contype::text AS contype,
               ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                     ORDER BY k.n)::text[] AS columns,
               CASE WHEN con.contype = 'x' THEN ARRAY(
                   SELECT a.attname FROM unnest(con.conkey, con.conexclop) e(attnum, op)
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = e.attnum
                   JOIN pg_operator o ON o.oid = e.op WHERE o.oprname = '=')::text[]
               END AS equal_columns
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = t.oid
        WHERE t.relnamespace = 'public'::regnamespace
          AND (x.indisunique OR x.indisprimary OR con.contype = 'x')
        """
    )
    kinds = await tables(conn)
    primaries = {row["tbl"] for row in rows if row["is_primary"]}
    for name, tenant in kinds.items():
        if distribution_column(name, tenant) is not None and name not in primaries:
            problems.append(f"{name}: no primary key")
    for row in rows:
        table = row["tbl"]
        column = distribution_column(table, kinds.get(table, False))
        if column is None:
            continue
        if table == ROOT and row["conname"] in ROOT_GLOBAL_UNIQUES:
            continue
        have = row["equal_columns"] if row["contype"] == "x" else row["columns"]
        if column not in have:
            what = "primary key" if row["is_primary"] else (row["conname"] or row["idx"])
            problems.append(f"{table}: {what} lacks {column}")
    return problems


async def foreign_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT con.conname, src.relname AS src, dst.relname AS dst,
               con.confdeltype::text AS confdeltype, con.confupdtype::text AS confupdtype,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.n)::text[] AS columns,
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                     ORDER BY k.n)::text[] AS ref_columns
        FROM pg_constraint con
        JOIN pg_class src ON src.oid = con.conrelid
        JOIN pg_class dst ON dst.oid = con.confrelid
        WHERE con.contype = 'f' AND src.relnamespace = 'public'::regnamespace
        """
    )


async def foreign_key_problems(conn: asyncpg.Connection) -> list[str]:
    kinds = await tables(conn)
    problems: list[str] = []
    for fk in await foreign_keys(conn):
        src, dst, name = fk["src"], fk["dst"], fk["conname"]
        src_tenant, dst_tenant = kinds.get(src, False), kinds.get(dst, False)
        dst_distributed = dst_tenant or dst == ROOT
        src_distributed = src_tenant or src == ROOT
        if dst_distributed and fk["confdeltype"] in ("n", "d"):
            problems.append(f"{src}.{name}: ON DELETE SET NULL/DEFAULT to {dst}")
        if dst_distributed and fk["confupdtype"] in ("n", "d"):
            problems.append(f"{src}.{name}: ON UPDATE SET NULL/DEFAULT to {dst}")
        if dst_distributed and not src_distributed:
            problems.append(f"{src}.{name}: global table {src} references {dst}")
        if not src_distributed:
            continue
        if dst_distributed:
            # The distribution columns must be paired: business_id -> business_id (or id).
            wanted = "id" if dst == ROOT else "business_id"
            pairs = dict(zip(fk["columns"], fk["ref_columns"], strict=True))
            if pairs.get("business_id") != wanted:
                problems.append(f"{src}.{name}: not on (business_id, ...) to {dst}")
        elif dst not in REFERENCE_TABLES:
            problems.append(f"{src}.{name}: distributed {src} references non-reference {dst}")
    return problems


CHECKS = [
    unclassified,
    nullable_business_ids,
    keys_without_distribution_column,
    foreign_key_problems,
]


async def test_every_table_is_a_tenant_table_or_a_listed_global_one(
    conn: asyncpg.Connection,
) -> None:
    assert await unclassified(conn) == []
    assert not GLOBAL_TABLES & {name for name, tenant in (await tables(conn)).items() if tenant}


async def test_tenant_rows_always_name_their_business(conn: asyncpg.Connection) -> None:
    assert await nullable_business_ids(conn) == []


async def test_keys_and_unique_constraints_contain_the_distribution_column(
    conn: asyncpg.Connection,
) -> None:
    assert await keys_without_distribution_column(conn) == []


async def test_foreign_keys_are_colocated_and_never_set_null(conn: asyncpg.Connection) -> None:
    assert await foreign_key_problems(conn) == []


async def test_the_checks_catch_tables_built_the_old_way(conn: asyncpg.Connection) -> None:
    """Each check can fail: tables keyed the pre-Citus way are reported by all of them."""
    undo = conn.transaction()
    await undo.start()
    try:
        await conn.execute(
            """
            CREATE TABLE old_style_visit (
                id uuid PRIMARY KEY,
                business_id uuid REFERENCES business (id),
                staff_id uuid,
                code text UNIQUE,
                -- staff has no key on id alone any more: pair the columns the wrong way
                FOREIGN KEY (staff_id, business_id) REFERENCES staff (business_id, id)
                    ON DELETE SET NULL
            )
            """
        )
        await conn.execute("CREATE TABLE old_style_note (id int PRIMARY KEY)")
        await conn.execute(
            "CREATE TABLE old_style_link (visit_id uuid, "
            "owner_id uuid REFERENCES business (id) ON DELETE SET NULL)"
        )
        await conn.execute("CREATE UNIQUE INDEX old_style_staff ON staff (name)")
        await conn.execute(
            "ALTER TABLE staff ADD CONSTRAINT old_style_overlap EXCLUDE USING gist (name WITH =)"
        )
        found = {check.__name__: await check(conn) for check in CHECKS}
    finally:
        await undo.rollback()
    assert any("old_style_note" in p for p in found["unclassified"])
    assert any("old_style_link" in p for p in found["unclassified"])
    assert found["nullable_business_ids"] == ["old_style_visit.business_id is nullable"]
    assert sorted(found["keys_without_distribution_column"]) == [
        "old_style_visit: old_style_visit_code_key lacks business_id",
        "old_style_visit: primary key lacks business_id",
        "staff: old_style_overlap lacks business_id",
        "staff: old_style_staff lacks business_id",
    ]
    assert sorted(found["foreign_key_problems"]) == [
        "old_style_link.old_style_link_owner_id_fkey: ON DELETE SET NULL/DEFAULT to business",
        "old_style_link.old_style_link_owner_id_fkey: global table old_style_link "
        "references business",
        "old_style_visit.old_style_visit_staff_id_business_id_fkey: ON DELETE SET NULL/DEFAULT"
        " to staff",
        "old_style_visit.old_style_visit_staff_id_business_id_fkey: not on (business_id, ...)"
        " to staff",
    ]
    # And the real schema is clean again once they are gone.
    for check in CHECKS:
        assert await check(conn) == [], check.__name__
