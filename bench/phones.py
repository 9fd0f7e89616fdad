"""Phone parsing throughput: memberlake's phonenumbers pandas UDF in Spark against the same library
in a plain single-process loop, on the same numbers (a mix of national and international forms,
several countries, repeats as orders repeat a member's phone).

    python bench/phones.py --rows 1000000 [--distinct 300000]

Appends a section to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timezone
from pathlib import Path

FORMATS = {
    "US": ["({a}) {b}-{c}", "{a}.{b}.{c}", "1-{a}-{b}-{c}", "+1 {a} {b} {c}", "{a}{b}{c} x12"],
    "GB": ["07{m} {s}", "020 {b} {c}", "+44 7{m} {s}"],
    "CN": ["13{m}{s}", "+86 13{m} {s}", "010 {b}{c}"],
    "FR": ["06 {p}", "+33 6 {p}"],
}


def numbers(n_distinct: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n_distinct):
        region = rng.choices(list(FORMATS), weights=[70, 12, 12, 6])[0]
        fmt = rng.choice(FORMATS[region])
        out.append((fmt.format(a=rng.randint(201, 989), b=rng.randint(200, 999), c=f"{rng.randint(0, 9999):04d}",
                               m=f"{rng.randint(0, 999):03d}", s=f"{rng.randint(0, 999999):06d}",
                               p=" ".join(f"{rng.randint(0, 99):02d}" for _ in range(4))), region))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=300_000)
    parser.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args()

    import pandas as pd
    from pyspark.sql import functions as F

    from memberlake.phones import _parser, parse_phone, phone_info
    from memberlake.settings import load_settings
    from memberlake.spark import get_spark

    distinct = numbers(args.distinct)
    rng = random.Random(11)
    rows = [distinct[rng.randrange(len(distinct))] for _ in range(args.rows)]
    frame = pd.DataFrame(rows, columns=["raw", "region"])

    parse_phone.cache_clear()
    t0 = time.perf_counter()
    single = _parser("US")(frame["raw"], frame["region"])
    single_s = time.perf_counter() - t0
    parse_phone.cache_clear()

    spark = get_spark(load_settings("local", ["spark.master=local[2]", "spark.shuffle_partitions=8"]))
    df = spark.createDataFrame(frame).repartition(8).localCheckpoint()
    df.count()
    t0 = time.perf_counter()
    parsed = df.select(phone_info(F.col("raw"), F.col("region"), "US").alias("p")).select("p.*")
    counts = parsed.agg(F.count("e164").alias("e164"), F.sum(F.col("valid").cast("int")).alias("valid")).first()
    spark_s = time.perf_counter() - t0
    assert counts["e164"] == single["e164"].notna().sum(), (counts, single["e164"].notna().sum())

    text = (f"\n### phones: parse {args.rows:,} numbers ({args.distinct:,} distinct) — "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `python bench/phones.py --rows {args.rows} --distinct {args.distinct}`; 2 cores.\n\n"
            "| run | wall time (s) | numbers/s |\n|---|---:|---:|\n"
            f"| memberlake `phone_info` (pandas UDF, `local[2]`, 8 partitions) | {spark_s:.1f} | {args.rows / spark_s:,.0f} |\n"
            f"| phonenumbers, one Python process (same function, same cache) | {single_s:.1f} | {args.rows / single_s:,.0f} |\n\n"
            f"Both agree: {counts['e164']:,} E.164 numbers, {counts['valid']:,} valid in their plan. "
            f"Ratio (Spark / single process): {spark_s / single_s:.2f}x.\n")
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text)


if __name__ == "__main__":
    main()
