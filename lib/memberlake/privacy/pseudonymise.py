"""Keyed pseudonyms (HMAC-SHA-256) and analyst masks for PII, computed in the JVM.

Silver is the last layer holding raw e-mails and phones: jobs that build gold tables from silver
replace every column listed in ``privacy.pii_columns`` with its keyed hash, and the identity
graph stores e-mail and phone nodes the same way. The hash is keyed so that nobody without the
key can test a guessed e-mail against it (a plain SHA-256 of an e-mail is reversed by a
dictionary). The key comes from an environment variable or a Databricks secret, never from a
config file. HMAC is composed from Spark's ``sha2`` (RFC 2104), so no Python UDF runs per row.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.settings import PrivacySettings, Settings, SettingsError

log = logging.getLogger(__name__)

# Used only when privacy.require_key is false (local mode): pseudonyms are then NOT secret.
DEVELOPMENT_KEY = b"memberlake-insecure-development-key"
# Identity-graph node types whose values are PII when their column is listed as PII.
PII_NODE_TYPES = ("email", "phone")
_BLOCK = 64  # SHA-256 block size in bytes


def hmac_sha256(value: Column, key: bytes) -> Column:
    """Hex HMAC-SHA-256 of a string column (null stays null); equals Python's ``hmac``."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = bytearray(b ^ 0x36 for b in key)
    opad = bytearray(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(value.cast("string"), "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


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

    def hash(self, value: Column) -> Column:
        return hmac_sha256(value, self.key)

    def table(self, df: DataFrame) -> DataFrame:
        """``df`` with its PII columns hashed (birth dates cut to the year); other columns kept."""
        out = df
        for name in self.columns:
            if name in df.columns:
                out = out.withColumn(name, self.hash(F.col(name)))
        if self.generalise_birth_date and "birth_date" in df.columns and "birth_date" not in self.columns:
            if isinstance(df.schema["birth_date"].dataType, T.DateType):
                out = out.withColumn("birth_date", F.trunc("birth_date", "year"))
        return out

    def node(self, id_type: Column, value: Column) -> Column:
        """An identity node's stored value: hashed for PII node types, as is otherwise."""
        if not self.node_types:
            return value
        return F.when(id_type.isin(*self.node_types), self.hash(value)).otherwise(value)

    def nodes(self, df: DataFrame, type_col: str = "id_type", value_col: str = "value") -> DataFrame:
        return df.withColumn(value_col, self.node(F.col(type_col), F.col(value_col)))

    def edges(self, df: DataFrame) -> DataFrame:
        return self.nodes(self.nodes(df, "src_type", "src_value"), "dst_type", "dst_value")


def holds_raw_pii(table: str) -> bool:
    """Landing-derived tables keep PII in the clear; everything built from silver holds keyed hashes."""
    return table.startswith(("bronze_", "silver_")) or table in ("quarantine", "late_events")


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


def masked(df: DataFrame, pii_columns: list[str] | tuple[str, ...]) -> DataFrame:
    """``df`` with every PII column masked for analysts (order and other columns kept)."""
    def one(c: str) -> Column:
        if c in pii_columns:
            return mask(c, F.col(c)).alias(c)
        if c == "raw_record" and pii_columns:  # a quarantined row as JSON text
            names = "|".join(pii_columns)
            return F.regexp_replace(c, f'"({names})":"(?:[^"\\\\]|\\\\.)*"', '"$1":"***"').alias(c)
        return F.col(c)

    return df.select(*[one(c) for c in df.columns])
