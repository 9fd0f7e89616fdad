"""DuckDB baseline of ingest + clean on the same landing files, for the benchmark ratio.

The same core computation as Spark's ingest + clean, written in DuckDB SQL: read every file as
text, null tokens, parse timestamps and amounts, standardise email / phone / gender / status,
split rejected rows from accepted ones, keep the latest row per natural key, and write Parquet.
Not reproduced: Delta transactions, per-file idempotency bookkeeping and the dq metrics, which
are Spark-side overheads the ratio therefore includes.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

NULLS = "('', 'null', 'none', 'n/a', 'na', 'nan', '\\N', '-')"


def _v(col: str) -> str:
    return f"CASE WHEN lower(trim({col})) IN {NULLS} THEN NULL ELSE trim({col}) END"


def _ts(col: str) -> str:
    v = _v(col)
    return (f"coalesce(TRY_CAST(regexp_replace({v}, 'Z$', '+00:00') AS TIMESTAMPTZ)::TIMESTAMP, "
            f"TRY_CAST({v} AS TIMESTAMP))")


def _phone(col: str) -> str:
    digits = f"regexp_replace({_v(col)}, '[^0-9]', '', 'g')"
    return (f"CASE WHEN starts_with(trim({col}), '+') AND length({digits}) BETWEEN 8 AND 15 THEN '+' || {digits} "
            f"WHEN length({digits}) = 10 THEN '+1' || {digits} "
            f"WHEN length({digits}) = 11 AND starts_with({digits}, '1') THEN '+' || {digits} END")


def _email(col: str) -> str:
    e = f"lower(regexp_replace({_v(col)}, '\\s+', '', 'g'))"
    return f"CASE WHEN regexp_matches({e}, '^[a-z0-9._%+''-]+@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{{2,}}$') THEN {e} END"


def _initcap(expr: str) -> str:
    return f"(upper(left({expr}, 1)) || lower(substr({expr}, 2)))"


def _csv(path: Path) -> str:
    return f"read_csv('{path}/*.csv', header=true, all_varchar=true, quote='\"', escape='\"', parallel=false)"


# The landing entities the baseline cleans; bench/run.py runs Spark's ingest and clean on the same.
ENTITIES = ("members", "orders", "order_items", "events")


def run_baseline(landing: Path, out: Path, threads: int = 2) -> tuple[int, dict[str, int]]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    queries = {
        "members": f"""
            SELECT {_v('member_id')} AS member_id, coalesce(lower({_v('source')}), 'default') AS source,
                   {_initcap(_v('first_name'))} AS first_name, {_initcap(_v('last_name'))} AS last_name,
                   CASE lower({_v('gender')}) WHEN 'm' THEN 'male' WHEN 'male' THEN 'male' WHEN 'f' THEN 'female'
                        WHEN 'female' THEN 'female' WHEN 'w' THEN 'female' ELSE 'unknown' END AS gender,
                   TRY_CAST({_v('birth_date')} AS DATE) AS birth_date, {_email('email')} AS email,
                   {_phone('phone')} AS phone, {_v('street')} AS street, {_initcap(_v('city'))} AS city,
                   upper({_v('postcode')}) AS postcode, upper({_v('state')}) AS state,
                   {_ts('registered_at')} AS registered_at, {_ts('updated_at')} AS updated_at
            FROM {_csv(landing / 'members')}
            WHERE {_v('member_id')} IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY source, member_id
                                       ORDER BY coalesce(updated_at, registered_at) DESC NULLS LAST) = 1""",
        "orders": f"""
            SELECT * FROM (
              SELECT {_v('order_id')} AS order_id, {_v('member_id')} AS member_id, {_email('email')} AS email,
                     {_phone('phone')} AS phone, {_ts('order_ts')} AS order_ts, lower({_v('channel')}) AS channel,
                     coalesce(lower({_v('status')}), 'completed') AS status,
                     TRY_CAST(regexp_replace({_v('total_amount')}, '[^0-9.-]', '', 'g') AS DECIMAL(18,2)) AS total_amount
              FROM {_csv(landing / 'orders')})
            WHERE order_id IS NOT NULL AND order_ts IS NOT NULL AND coalesce(total_amount, 0) >= 0
            QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY order_ts DESC) = 1""",
        "order_items": f"""
            SELECT * FROM (
              SELECT {_v('order_id')} AS order_id, TRY_CAST({_v('line_no')} AS INT) AS line_no,
                     {_v('product_id')} AS product_id, TRY_CAST({_v('quantity')} AS INT) AS quantity,
                     TRY_CAST(regexp_replace({_v('unit_price')}, '[^0-9.-]', '', 'g') AS DECIMAL(18,2)) AS unit_price,
                     coalesce(TRY_CAST({_v('discount_amount')} AS DECIMAL(18,2)), 0) AS discount_amount
              FROM {_csv(landing / 'order_items')})
            WHERE order_id IS NOT NULL AND product_id IS NOT NULL AND quantity > 0 AND unit_price >= 0
            QUALIFY row_number() OVER (PARTITION BY order_id, line_no ORDER BY product_id) = 1""",
        "events": f"""
            SELECT * FROM (
              SELECT {_v('event_id')} AS event_id, {_ts('event_ts')} AS event_ts, anonymous_id, device_id, member_id,
                     lower(event_type) AS event_type, page_url, referrer, lower(utm_source) AS utm_source,
                     lower(utm_medium) AS utm_medium, lower(utm_campaign) AS utm_campaign, product_id, order_id
              FROM read_json('{landing / 'events'}/*.json', format='newline_delimited', columns={{
                  event_id: 'VARCHAR', event_ts: 'VARCHAR', anonymous_id: 'VARCHAR', device_id: 'VARCHAR',
                  member_id: 'VARCHAR', event_type: 'VARCHAR', page_url: 'VARCHAR', referrer: 'VARCHAR',
                  utm_source: 'VARCHAR', utm_medium: 'VARCHAR', utm_campaign: 'VARCHAR', product_id: 'VARCHAR',
                  order_id: 'VARCHAR'}}))
            WHERE event_ts IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY event_ts) = 1""",
    }
    counts = {}
    assert tuple(queries) == ENTITIES
    for name, sql in queries.items():
        target = out / f"{name}.parquet"
        con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
        counts[name] = con.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
    con.close()
    return sum(counts.values()), counts
