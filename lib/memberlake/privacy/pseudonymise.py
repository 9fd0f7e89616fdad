"""Keyed pseudonyms (HMAC-SHA-256) and analyst masks for PII, computed in the JVM.

Silver is the last layer holding raw e-mails and phones: jobs that build gold tables from silver
replace every column listed in ``privacy.pii_columns`` with its keyed hash, and the identity
graph stores e-mail and phone nodes the same way. The hash is keyed so that nobody without the
key can test a guessed e-mail against it (a plain SHA-256 of an e-mail is reversed by a
dictionary). The key comes from an environment variable or a Databricks secret, never from a
config file. HMAC is composed from Spark's ``sha2`` (RFC 2104), so no Python UDF runs per row;
the key's pads reach the rows as a broadcast one-row frame, never as literals in a query plan.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.contract import Tables
from memberlake.exprs import mask_text
from memberlake.settings import PrivacySettings, Settings, SettingsError

log = logging.getLogger(__name__)

# Used only when privacy.require_key is false (local mode): pseudonyms are then NOT secret.
DEVELOPMENT_KEY = b"memberlake-insecure-development-key"
# Identity-graph node types whose values are PII when their column is listed as PII.
PII_NODE_TYPES = ("email", "phone")
_BLOCK = 64  # SHA-256 block size in bytes


# Columns that carry the key's pads next to the rows while they are hashed (then dropped).
_IPAD, _OPAD = "_hmac_ipad", "_hmac_opad"


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def with_key(df: DataFrame, key: bytes) -> DataFrame:
    """``df`` with the key's inner and outer pads as two columns, from a broadcast one-row frame.

    The pads travel as data, never as literals: a literal would print in ``explain()``, the Spark
    UI's SQL tab and the event log, and anyone reading those could compute every pseudonym.
    """
    ipad, opad = _pads(key)
    pads = df.sparkSession.createDataFrame([(bytearray(ipad), bytearray(opad))], f"{_IPAD} binary, {_OPAD} binary")
    return df.crossJoin(F.broadcast(pads))


def keyed_hash(value: Column) -> Column:
    """Hex HMAC-SHA-256 (RFC 2104) of a string column, null stays null; equals Python's ``hmac``.
    Reads the pads :func:`with_key` added."""
    inner = F.unhex(F.sha2(F.concat(F.col(_IPAD), F.encode(value.cast("string"), "UTF-8")), 256))
    return F.sha2(F.concat(F.col(_OPAD), inner), 256)


def hmac_sha256(df: DataFrame, key: bytes, columns: dict[str, Column]) -> DataFrame:
    """``df`` with each ``columns`` name set to the keyed hash of its expression (other columns,
    and their order, kept)."""
    keyed = with_key(df, key)
    return keyed.select(*[keyed_hash(columns[c]).alias(c) if c in columns else F.col(c) for c in df.columns],
                        *[keyed_hash(e).alias(c) for c, e in columns.items() if c not in df.columns])


def resolve_key(cfg: PrivacySettings, spark: SparkSession | None = None) -> bytes:
    """The pseudonymisation key: environment variable, else Databricks secret, else (dev only) a fixed key."""
    value = os.environ.get(cfg.key_env)
    if value:
        return value.encode("utf-8")
    if cfg.secret_scope and cfg.secret_key:
        try:
            from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]  # Databricks only
        except ImportError:
            raise SettingsError(
                "privacy.secret_scope is set but dbutils is not available (not on Databricks): set the "
                f"environment variable {cfg.key_env} instead") from None
        return DBUtils(spark).secrets.get(cfg.secret_scope, cfg.secret_key).encode("utf-8")
    if cfg.require_key:
        raise SettingsError(
            f"privacy: no pseudonymisation key. Set the environment variable {cfg.key_env} (or "
            "privacy.secret_scope and privacy.secret_key on Databricks); keys never go in config files. "
            "For a local try-out only, --set privacy.require_key=false uses a fixed, insecure key.")
    log.warning("privacy: %s is not set; using the fixed development key (pseudonyms are not secret)",
                cfg.key_env)
    return DEVELOPMENT_KEY


@dataclass(frozen=True)
class Pseudonymiser:
    """Replaces PII columns and identity nodes by keyed hashes; ``key`` is never printed."""

    key: bytes = field(repr=False)
    columns: tuple[str, ...]
    generalise_birth_date: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, spark: SparkSession | None = None) -> "Pseudonymiser":
        cfg = settings.privacy
        return cls(resolve_key(cfg, spark), tuple(cfg.pii_columns), cfg.generalise_birth_date)

    @property
    def node_types(self) -> tuple[str, ...]:
        return tuple(t for t in PII_NODE_TYPES if t in self.columns)

    def hash_columns(self, df: DataFrame, columns: dict[str, Column]) -> DataFrame:
        """``df`` with each of ``columns`` (name -> expression) set to the expression's keyed hash."""
        return hmac_sha256(df, self.key, columns)

    def table(self, df: DataFrame) -> DataFrame:
        """``df`` with its PII columns hashed (birth dates cut to the year); other columns kept."""
        pii = [name for name in self.columns if name in df.columns]
        out = self.hash_columns(df, {name: F.col(name) for name in pii}) if pii else df
        if self.generalise_birth_date and "birth_date" in df.columns and "birth_date" not in self.columns:
            if isinstance(df.schema["birth_date"].dataType, T.DateType):
                out = out.withColumn("birth_date", F.trunc("birth_date", "year"))
        return out

    def _node(self, id_type: Column, value: Column) -> Column:
        return F.when(id_type.isin(*self.node_types), keyed_hash(value)).otherwise(value)

    def nodes(self, df: DataFrame, type_col: str = "id_type", value_col: str = "value") -> DataFrame:
        """Identity nodes as stored: values of PII node types hashed, the others as they are."""
        return self._node_columns(df, [(type_col, value_col)])

    def edges(self, df: DataFrame) -> DataFrame:
        return self._node_columns(df, [("src_type", "src_value"), ("dst_type", "dst_value")])

    def _node_columns(self, df: DataFrame, pairs: list[tuple[str, str]]) -> DataFrame:
        if not self.node_types:
            return df
        hashed = {value: self._node(F.col(kind), F.col(value)) for kind, value in pairs}
        keyed = with_key(df, self.key)
        return keyed.select(*[hashed[c].alias(c) if c in hashed else F.col(c) for c in df.columns])


def holds_raw_pii(table: str) -> bool:
    """Landing-derived tables keep PII in the clear; everything built from silver holds keyed hashes."""
    return table.startswith(("bronze_", "silver_")) or table in (Tables.QUARANTINE, Tables.LATE_EVENTS)


def mask(name: str, value: Column) -> Column:
    """What an analyst view shows of a PII column: ``j***@example.com``, ``***4567``, ``J***``."""
    text = value.cast("string")
    if name == "email":
        return F.regexp_replace(text, r"^(.)[^@]*@", "$1***@")
    if name == "phone":
        digits = F.regexp_replace(text, r"\D", "")
        return F.when(text.isNull(), None).otherwise(F.concat(F.lit("***"), F.substring(digits, -4, 4)))
    if name in ("first_name", "last_name"):
        return F.when(text.isNull(), None).otherwise(F.concat(F.substring(text, 1, 1), F.lit("***")))
    return F.when(text.isNull(), None).otherwise(F.lit("***"))


# Free-text columns (reviews): not hashed (sentiment reads them), masked in analyst exports.
FREE_TEXT = ("title", "body")


def masked(df: DataFrame, pii_columns: list[str] | tuple[str, ...]) -> DataFrame:
    """``df`` with every PII column masked for analysts (order and other columns kept)."""
    def one(c: str) -> Column:
        if c in pii_columns:
            return mask(c, F.col(c)).alias(c)
        if c in FREE_TEXT and pii_columns:     # what a member wrote: contacts inside it masked
            return mask_text(F.col(c), limit=10_000).alias(c)
        if c == "raw_record" and pii_columns:  # a quarantined row as JSON text
            names = "|".join(pii_columns)
            return F.regexp_replace(c, f'"({names})":"(?:[^"\\\\]|\\\\.)*"', '"$1":"***"').alias(c)
        return F.col(c)

    return df.select(*[one(c) for c in df.columns])
