"""Readers for the raw landing zone: CSV (with header), JSON lines and Parquet.

Every contract column is read as a string so that nothing is lost to a failed cast; columns
absent from a file become nulls, header names are matched after trimming, lower-casing and
dropping a byte-order mark, and ``landing.column_map`` renames a source's own headers. Every CSV
file is aligned by its own header, so files of one entity may order or choose their columns
differently. A CSV row whose field count does not match its header keeps its raw text in
``_corrupt_record``.
"""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.contract import SOURCE_FILE, Entity
from memberlake.settings import LandingSettings, SettingsError

log = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"
FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".json": "json", ".jsonl": "json", ".ndjson": "json",
    ".parquet": "parquet",
}
_COMPRESSION = (".gz", ".bz2", ".snappy", ".zst", ".lz4", ".deflate")


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    modified: int  # epoch millis
    format: str
    group: str  # files of one group share a header and are read in one pass


def file_format(name: str) -> str | None:
    """csv / json / parquet from the file name (a compression suffix is looked through)."""
    lower = name.lower()
    for suffix in _COMPRESSION:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    for ext, fmt in FORMATS.items():
        if lower.endswith(ext):
            return fmt
    return None


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _matches_entity(name: str, entity: str) -> bool:
    """``members.csv``, ``members_2024-01.csv.gz``, ``members-part1.json`` belong to members."""
    base = name.lower()
    return base == entity or bool(re.match(rf"^{re.escape(entity)}([._-]|\d)", base))


def list_entity_files(spark: SparkSession, root: str, entity: str) -> list[LandingFile]:
    """Files of ``entity`` under ``root``: in ``root/<entity>/`` (any depth) or named after it."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(root)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hadoop_path):
        return []
    found: list[LandingFile] = []

    def walk(path, group: str | None) -> None:
        for status in fs.listStatus(path):
            name = status.getPath().getName()
            if _is_hidden(name):
                continue
            full = status.getPath().toString()
            if status.isDirectory():
                if group is not None:
                    walk(status.getPath(), group)
                elif name.lower() == entity:
                    walk(status.getPath(), full)
                continue
            fmt = file_format(name)
            if fmt is None:
                continue
            if group is not None:
                found.append(LandingFile(full, status.getLen(), status.getModificationTime(), fmt, f"{group}|{fmt}"))
            elif _matches_entity(name, entity):
                found.append(LandingFile(full, status.getLen(), status.getModificationTime(), fmt, full))

    walk(hadoop_path, None)
    return sorted(found, key=lambda f: f.path)


def normalise_header(name: str) -> str:
    return re.sub(r"\s+", "_", name.replace("\ufeff", "").strip().lower())


def _csv_reader(spark: SparkSession, landing: LandingSettings):
    return (
        spark.read.format("csv")
        .option("header", True)
        .option("sep", landing.delimiter)
        .option("quote", landing.quote)
        .option("escape", landing.escape)
        .option("encoding", landing.encoding)
        .option("multiLine", landing.multiline)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("enforceSchema", True)
    )


def _json_schema(entity: Entity, column_map: dict[str, str]) -> T.StructType:
    """Contract columns (under their source names) as strings: no inference pass over the data."""
    names = [column_map.get(c, c) for c in entity.column_names]
    return T.StructType([T.StructField(n, T.StringType()) for n in names] + [T.StructField(CORRUPT, T.StringType())])


MAX_HEADER_LINES = 20  # a header with quoted line breaks may span lines, but not more than this


SNIFF_BYTES = 1 << 16   # how much of a CSV file is read to choose its encoding
FALLBACK_ENCODING = "ISO-8859-1"   # one of the charsets Spark 4 reads CSV in


def _open(spark: SparkSession, path: str):
    """A Hadoop input stream of ``path``, decompressed by its suffix (as Spark reads it)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    stream = hpath.getFileSystem(conf).open(hpath)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(hpath)
    return stream, (codec.createInputStream(stream) if codec is not None else stream)


def csv_encoding(spark: SparkSession, path: str, landing: LandingSettings) -> str:
    """The configured encoding, except that a file that is not valid UTF-8 where UTF-8 is
    configured (a Latin-1 or Windows export) is read as ISO-8859-1, with a warning. Decided on the
    file's first 64 KiB."""
    if landing.encoding.replace("-", "").lower() != "utf8":
        return landing.encoding
    jvm = spark.sparkContext._jvm
    stream, source = _open(spark, path)
    try:
        head = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(
            jvm.org.apache.commons.io.input.BoundedInputStream(source, SNIFF_BYTES)))
    finally:
        stream.close()
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) == SNIFF_BYTES and exc.start >= len(head) - 3:   # a character cut at the end
            return landing.encoding
        log.warning("%s is not UTF-8 (byte %d): read as %s", path, exc.start, FALLBACK_ENCODING)
        return FALLBACK_ENCODING
    return landing.encoding


def csv_header(spark: SparkSession, path: str, landing: LandingSettings) -> tuple[str, ...] | None:
    """The header fields of one CSV file (decompressed and decoded as Spark reads it), or None for
    an empty file. Read on the driver from the file's first line(s): no Spark job per file."""
    jvm = spark.sparkContext._jvm
    stream, source = _open(spark, path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(source, landing.encoding))
        text = ""
        for _ in range(MAX_HEADER_LINES):
            line = reader.readLine()
            if line is None:
                break
            text = f"{text}\n{line}" if text else line
            if text.count(landing.quote) % 2 == 0:   # no quoted field left open
                break
    finally:
        stream.close()
    text = text.lstrip("\ufeff")
    if not text.strip():
        return None
    row = next(csv.reader([text], delimiter=landing.delimiter, quotechar=landing.quote,
                          escapechar=None if landing.escape == landing.quote else landing.escape,
                          doublequote=landing.escape == landing.quote))
    seen: dict[str, int] = {}
    fields = []
    for name in row:   # a repeated header gets a suffix (Spark refuses duplicate columns)
        seen[name] = seen.get(name, 0) + 1
        fields.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return tuple(fields)


def _read_group(spark: SparkSession, files: list[LandingFile], landing: LandingSettings,
                entity: Entity, header: tuple[str, ...] | None = None) -> DataFrame:
    paths = [f.path for f in files]
    fmt = files[0].format
    if fmt == "csv":
        # enforceSchema: Spark skips each file's header line and reads fields by position, so a
        # group holds only files with this same header (see read_entity).
        schema = T.StructType([T.StructField(h, T.StringType()) for h in header or ()]
                              + [T.StructField(CORRUPT, T.StringType())])
        return _csv_reader(spark, landing).schema(schema).load(paths)
    if fmt == "json":
        schema = _json_schema(entity, landing.column_map.get(entity.name, {}))
        return (spark.read.schema(schema).option("encoding", landing.encoding)
                .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT).json(paths))
    return spark.read.parquet(*paths)


def _as_string(df: DataFrame, name: str) -> SparkColumn:
    """Strings as they are; timestamps as ISO-8601 instants (never re-read as local time)."""
    dtype = df.schema[name].dataType
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        pattern = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS" + ("XXX" if isinstance(dtype, T.TimestampType) else "")
        return F.date_format(F.col(f"`{name}`"), pattern)
    return F.col(f"`{name}`").cast("string")


def _default_literal(value: str | int | float | bool) -> str:
    """A configured default as the string a file would hold (every landing value is read as one)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def conform(df: DataFrame, entity: Entity, column_map: dict[str, str],
            defaults: dict[str, str | int | float | bool] | None = None, keyed_records: bool = False) -> DataFrame:
    """Project a source frame onto the contract's raw schema (+ file and corrupt columns); a
    contract column the frame lacks is empty, or its configured default. JSON records carry their
    own keys (the reader gives every contract column), so there a null takes the default."""
    by_header = {normalise_header(c): c for c in df.columns}
    mapped = {k: normalise_header(v) for k, v in column_map.items()}
    defaults = defaults or {}
    for setting, keys in (("column_map", mapped), ("column_defaults", defaults)):
        missing = [c for c in keys if c not in entity.column_names]
        if missing:
            raise SettingsError(f"landing.{setting}.{entity.name}: {missing} are not contract columns of "
                                f"{entity.name}; the keys are contract names"
                                + (", the values your file's headers" if setting == "column_map" else ""))
    selected, absent, defaulted = [], [], []
    for column in entity.column_names:
        source = by_header.get(mapped.get(column, column))
        fill = F.lit(_default_literal(defaults[column])) if column in defaults else None
        if source is None:
            (absent if fill is None else defaulted).append(column)
            value = F.lit(None).cast("string") if fill is None else fill
        else:
            value = _as_string(df, source)
            if keyed_records and fill is not None:
                value = F.coalesce(value, fill)
        selected.append(value.alias(column))
    used = {by_header.get(mapped.get(c, c)) for c in entity.column_names}
    ignored = [c for c in df.columns if c not in used and c != CORRUPT]
    if absent:
        log.info("%s: columns absent from the files, read as empty: %s", entity.name, absent)
    if defaulted:
        log.info("%s: columns absent from the files, read as landing.column_defaults: %s", entity.name,
                 {c: defaults[c] for c in defaulted})
    if ignored:
        log.warning("%s: columns not in the contract, ignored: %s", entity.name, ignored)
    corrupt = F.col(CORRUPT) if CORRUPT in df.columns else F.lit(None).cast("string")
    return df.select(*selected, F.col("_metadata.file_path").alias(SOURCE_FILE), corrupt.alias(CORRUPT))


def read_entity(spark: SparkSession, files: list[LandingFile], entity: Entity,
                landing: LandingSettings) -> DataFrame | None:
    """Read and conform ``files`` of one entity; ``None`` when there are none."""
    if not files:
        return None
    # Files are read together only when they read alike: CSV files by their own header and
    # encoding (each is aligned to the contract by its names), Parquet files by their schema (a
    # column's type may differ between files).
    groups: dict[tuple, list[LandingFile]] = {}
    for f in files:
        if f.format == "csv":
            read_as = landing.model_copy(update={"encoding": csv_encoding(spark, f.path, landing)})
            header = csv_header(spark, f.path, read_as)
            if header is None:
                log.info("%s: %s is empty (no header), no rows", entity.name, f.path)
                continue
            key: tuple = (f.group, header, read_as.encoding)
        elif f.format == "parquet":
            key = (f.group, spark.read.parquet(f.path).schema.simpleString())
        else:
            key = (f.group,)
        groups.setdefault(key, []).append(f)
    if len(groups) > len({k[0] for k in groups}):
        log.info("%s: %d files read in %d groups (different headers, encodings or types)", entity.name,
                 len(files), len(groups))
    column_map = landing.column_map.get(entity.name, {})
    defaults = landing.column_defaults.get(entity.name, {})
    frames = []
    for key, group in groups.items():
        if group[0].format == "csv":
            read_as = landing.model_copy(update={"encoding": key[2]})
            frames.append(conform(_read_group(spark, group, read_as, entity, key[1]), entity, column_map, defaults))
        else:
            frames.append(conform(_read_group(spark, group, landing, entity), entity, column_map, defaults,
                                  keyed_records=group[0].format == "json"))
    if not frames:   # every file empty: no rows, the contract's shape
        names = [*entity.column_names, SOURCE_FILE, CORRUPT]
        return spark.createDataFrame([], T.StructType([T.StructField(n, T.StringType()) for n in names]))
    return reduce(lambda a, b: a.unionByName(b), frames)
