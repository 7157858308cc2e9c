"""A used PostgreSQL test database put back as its template left it, so that the next test can
take it instead of a new copy. Creating a database and dropping it cost more than a test on
it: every DROP DATABASE forces a checkpoint, which under a loaded run takes seconds and
stalls every other test's writes.

Put back: the tables, sequences and schemas a test added are dropped, the template's tables
emptied and their rows (the read models' tracking rows) written again. Then the database's
definition (tables, columns, indexes, constraints, triggers and whether they are enabled,
functions, schemas, privileges, its settings, its sequences) is compared with the
template's: a database whose definition a test changed otherwise (a trigger disabled, a
setting made read-only, a column altered) is dropped, never reused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# One row per thing that makes up the database's definition; compared as a whole.
DEFINITION = """
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
  SELECT 'c:' || n.nspname || '.' || c.relname || ':' || c.relkind::text || ':'
         || coalesce(c.relacl::text, '') || ':' || c.relpersistence::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  UNION ALL
  SELECT 'a:' || c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
         || ':' || a.attnotnull || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'i:' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
  UNION ALL
  SELECT 'k:' || conrelid::regclass::text || '.' || conname || ':' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 't:' || tgrelid::regclass::text || '.' || tgname || ':' || tgenabled::text
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'p:' || p.oid::regprocedure::text || ':' || md5(p.prosrc)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT 'n:' || nspname || ':' || coalesce(nspacl::text, '') FROM pg_namespace
  UNION ALL
  SELECT 'e:' || extname || ':' || extversion FROM pg_extension
  UNION ALL
  SELECT 'q:' || c.relname || ':' || coalesce(pg_sequence_last_value(c.oid)::text, '-')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND n.nspname = 'public'
  UNION ALL
  SELECT 's:' || coalesce(array_to_string(setconfig, ','), '')
    FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL
  SELECT 'd:' || datallowconn || ':' || datconnlimit || ':' || coalesce(datacl::text, '')
    FROM pg_database WHERE datname = current_database()
) AS definition(x)
"""


@dataclass(frozen=True)
class Template:
    """What a copy of the template must be put back to."""

    tables: tuple[str, ...]  # of schema public
    rows: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]  # table -> columns, rows
    definition: str

    @classmethod
    def read(cls, url: str) -> Template:
        with psycopg.connect(url, autocommit=True) as conn:
            tables = tuple(
                str(name)
                for (name,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            )
            rows: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
            for table in tables:
                cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
                found = cursor.fetchall()
                if found:
                    columns = tuple(column.name for column in cursor.description or ())
                    rows[table] = (columns, found)
            return cls(tables, rows, _definition(conn))


def _definition(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(DEFINITION).fetchone()
    assert row is not None
    return str(row[0])


def put_back(admin_url: str, url: str, dbname: str, template: Template) -> bool:
    """Whether the database at `url` is as the template left it again (else: drop it)."""
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            # What the test left connected (a killed server's sessions, a pool not closed).
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SET lock_timeout = '10s'")
            # The ledger's tables refuse TRUNCATE through triggers, which fire only for a
            # session in the origin role.
            conn.execute("SET LOCAL session_replication_role = replica")
            for schema in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT IN"
                " ('public', 'pg_catalog', 'information_schema')"
                " AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%'"
            ).fetchall():
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema[0])))
            for kind, name in conn.execute(
                "SELECT c.relkind, c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p')"
            ).fetchall():
                if kind in ("r", "p") and name in template.tables:
                    continue
                if kind == "S" and _owned(conn, name):
                    continue
                what = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
                statement = f"DROP {what.get(kind, 'SEQUENCE')} IF EXISTS {{}} CASCADE"
                conn.execute(sql.SQL(statement).format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(table) for table in template.tables)
                )
            )
            for table, (columns, rows) in template.rows.items():
                with conn.cursor() as cursor:
                    cursor.executemany(
                        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                            sql.Identifier(table),
                            sql.SQL(", ").join(sql.Identifier(column) for column in columns),
                            sql.SQL(", ").join(sql.Placeholder() for _ in columns),
                        ),
                        rows,
                    )
            conn.commit()
            conn.autocommit = True
            return _definition(conn) == template.definition
    except psycopg.Error:
        return False


def _owned(conn: psycopg.Connection[Any], sequence: str) -> bool:
    """Whether `sequence` belongs to a column (TRUNCATE ... RESTART IDENTITY resets it)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_depend d JOIN pg_class s ON s.oid = d.objid"
        " WHERE s.relname = %s AND d.deptype IN ('a', 'i')",
        (sequence,),
    ).fetchone()
    return row is not None and int(row[0]) > 0
