"""Right to be forgotten: find everything that belongs to a person and say how to delete it.

A request names person ids and/or identifiers (e-mail, phone, member id). They are resolved
through the identity graph to person ids, and the person's whole identity component (member
records, member ids, cookies, devices, hashed e-mails and phones) becomes the *footprint*. Every
table is then matched by the columns it has — ``person_id``, member keys, identifiers in the
clear (bronze, silver, sessions) or hashed (gold), identity-graph node values, the JSON of a
quarantined record, order ids of the person's orders — so a table added later is covered
without a list to maintain. The footprint is small (one person's identifiers), so it is
collected to the driver; the tables are only filtered.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake import standardise as S
from memberlake.phones import phone_info
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import CleanSettings

log = logging.getLogger(__name__)

IDENTIFIER_KINDS = ("person_id", "email", "phone", "member_id")
# Columns that carry a person's identifiers in the clear, and the footprint set they match.
_PLAIN = {"member_id": "member_ids", "anonymous_id": "cookies", "device_id": "devices", "order_id": "order_ids"}
# Columns holding a member record's key, source:member_id (match_pairs' two sides).
MEMBER_KEY_COLUMNS = {"l_record", "r_record", "record"}
_NODE_SETS = {"member": "member_keys", "member_id": "member_ids", "cookie": "cookies", "device": "devices",
              "email": "emails", "phone": "phones"}


@dataclass
class Footprint:
    """A person's identifiers as stored: e-mails and phones as keyed hashes, the rest as is."""

    person_ids: set[str] = field(default_factory=set)
    member_keys: set[str] = field(default_factory=set)  # source:member_id
    member_ids: set[str] = field(default_factory=set)
    cookies: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)       # hashed
    phones: set[str] = field(default_factory=set)       # hashed
    order_ids: set[str] = field(default_factory=set)
    # The e-mails and phones above exactly as tables hold them in the clear (raw in bronze and
    # quarantine, normalised in silver), found by :func:`clear_contacts` in those tables.
    clear_emails: set[str] = field(default_factory=set)
    clear_phones: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)


def request_seeds(spark: SparkSession, requested: dict[str, list[str]], pseud: Pseudonymiser,
                  clean: CleanSettings) -> list[tuple[str, str]]:
    """(id_type, stored value) of the identity nodes a request names, normalised as clean does."""
    rows = [(kind, value) for kind, values in requested.items() for value in values if value.strip()]
    if not rows:
        return []
    df = spark.createDataFrame(rows, "kind string, raw string")
    email = S.email(F.col("raw"))
    phone = phone_info(F.col("raw"), F.lit(clean.default_country), clean.default_country)["e164"]
    member_key = F.col("raw").contains(":")
    id_type = (F.when(F.col("kind") == "email", "email").when(F.col("kind") == "phone", "phone")
               .when(F.col("kind") == "person_id", "person_id")
               .when(member_key, "member").otherwise("member_id"))
    value = (F.when(F.col("kind") == "email", email).when(F.col("kind") == "phone", phone)
             .otherwise(F.trim("raw")))
    seeds = pseud.nodes(df.select(id_type.alias("id_type"), value.alias("value")).where(F.col("value").isNotNull()))
    return [(r.id_type, r.value) for r in seeds.distinct().collect()]  # bounded by the request


def footprint(graph: DataFrame | None, id_map: DataFrame | None, seeds: list[tuple[str, str]]) -> Footprint:
    """Everything the identity graph ties to the seeds' persons (seeds themselves included)."""
    fp = Footprint()
    fp.person_ids = {v for t, v in seeds if t == "person_id"}
    for t, v in seeds:
        if t in _NODE_SETS:
            getattr(fp, _NODE_SETS[t]).add(v)
    if graph is not None:
        node_seeds = [(t, v) for t, v in seeds if t != "person_id"]
        if node_seeds:
            hit = reduce(lambda a, b: a | b, [(F.col("id_type") == t) & (F.col("value") == v) for t, v in node_seeds])
            fp.person_ids |= {r.person_id for r in graph.where(hit).select("person_id").distinct().collect()}
    if id_map is not None and fp.person_ids:
        old = id_map.where(F.col("old_id").isin(*fp.person_ids) | F.col("current_id").isin(*fp.person_ids))
        for r in old.collect():
            fp.person_ids |= {r.old_id, r.current_id}
    if graph is not None and fp.person_ids:
        for r in graph.where(F.col("person_id").isin(*fp.person_ids)).select("id_type", "value").collect():
            if r.id_type in _NODE_SETS:
                getattr(fp, _NODE_SETS[r.id_type]).add(r.value)
    fp.member_ids |= {k.split(":", 1)[1] for k in fp.member_keys if ":" in k}
    return fp


def _normalised(kind: str, raw: Column, region: Column, clean: CleanSettings) -> Column:
    """An e-mail or phone in the clear, normalised as clean does (what the identity graph hashed)."""
    return S.email(raw) if kind == "email" else phone_info(raw, region, clean.default_country)["e164"]


def clear_contacts(df: DataFrame, fp: Footprint, pseud: Pseudonymiser, clean: CleanSettings) -> None:
    """Add to ``fp`` the e-mails and phones, exactly as ``df`` holds them in the clear (columns,
    or fields of a quarantined record's JSON), whose normalised keyed hash is one of the
    footprint's. The rows are then matched by those stored values.

    The hashing runs in Spark with the key as data (never in a plan); only the footprint's own
    values come back to the driver.
    """
    wanted = {"email": fp.emails, "phone": fp.phones}
    cols = set(df.columns)
    sources = []
    if "raw_record" in cols:
        field = lambda name: F.get_json_object("raw_record", f"$.{name}")  # noqa: E731
        sources += [(kind, field(kind), field("country")) for kind in wanted if wanted[kind]]
    country = F.col("country") if "country" in cols else F.lit(None).cast("string")
    sources += [(kind, F.col(kind), country) for kind in wanted if kind in cols and wanted[kind]]
    if not sources:
        return
    values = reduce(DataFrame.unionByName, [
        df.select(F.lit(kind).alias("kind"), raw.alias("stored"), _normalised(kind, raw, S.country(c, clean.country_map, clean.default_country), clean)
                  .alias("value"))
        for kind, raw, c in sources])
    values = values.where(F.col("value").isNotNull()).distinct()
    hashed = pseud.hash_columns(values, {"hashed": F.col("value")})
    hit = reduce(lambda a, b: a | b, [(F.col("kind") == kind) & F.col("hashed").isin(*sorted(hashes))
                                      for kind, hashes in wanted.items() if hashes])
    for r in hashed.where(hit).select("kind", "stored").collect():  # bounded by the footprint
        (fp.clear_emails if r.kind == "email" else fp.clear_phones).add(r.stored)


class Matcher:
    """Row conditions that select a footprint's rows in any table, by the columns it has."""

    def __init__(self, fp: Footprint, pseud: Pseudonymiser, clean: CleanSettings) -> None:
        self.fp, self.pseud, self.clean = fp, pseud, clean

    def _isin(self, col: Column, values: set[str]) -> Column | None:
        return col.isin(*sorted(values)) if values else None

    def _clear(self, kind: str, raw: Column) -> Column | None:
        # Stored in the clear (bronze, silver, quarantine): the stored values clear_contacts found.
        return self._isin(raw, self.fp.clear_emails if kind == "email" else self.fp.clear_phones)

    def _contact(self, name: str, col: Column, hashed: bool) -> Column | None:
        if hashed:  # already a keyed hash (gold tables built from silver)
            return self._isin(col, self.fp.emails if name == "email" else self.fp.phones)
        return self._clear(name, col)

    def _nodes(self, type_col: str, value_col: str) -> list[Column]:
        out = [(F.col(type_col) == t) & F.col(value_col).isin(*sorted(getattr(self.fp, s)))
               for t, s in _NODE_SETS.items() if getattr(self.fp, s)]
        if self.fp.person_ids:
            out.append((F.col(type_col) == "person") & F.col(value_col).isin(*sorted(self.fp.person_ids)))
        return out

    def condition(self, df: DataFrame, hashed_contacts: bool) -> Column | None:
        """Rows of ``df`` that belong to the footprint, or None when the table cannot hold any.

        For a table holding contacts in the clear, its values that hash into the footprint are
        looked up first (:func:`clear_contacts`, one Spark job).
        """
        cols = set(df.columns)
        if not hashed_contacts:
            clear_contacts(df, self.fp, self.pseud, self.clean)
        parts: list[Column | None] = []
        for name in ("person_id", "old_id", "new_id", "current_id"):
            if name in cols:
                parts.append(self._isin(F.col(name), self.fp.person_ids))
        for name in MEMBER_KEY_COLUMNS & cols:  # source:member_id, e.g. the two sides of match_pairs
            parts.append(self._isin(F.col(name), self.fp.member_keys))
        if {"source", "member_id"} <= cols:
            parts.append(self._isin(F.concat_ws(":", "source", "member_id"), self.fp.member_keys))
        elif "member_id" in cols:
            parts.append(self._isin(F.col("member_id"), self.fp.member_ids))
        for name, attr in _PLAIN.items():
            if name != "member_id" and name in cols:
                parts.append(self._isin(F.col(name), getattr(self.fp, attr)))
        if "order_ids" in cols and self.fp.order_ids:
            parts.append(F.arrays_overlap(F.col("order_ids"), F.array(*[F.lit(o) for o in sorted(self.fp.order_ids)])))
        for name in ("email", "phone"):
            if name in cols:
                parts.append(self._contact(name, F.col(name), hashed_contacts))
        if {"src_type", "src_value", "dst_type", "dst_value"} <= cols:
            parts += self._nodes("src_type", "src_value") + self._nodes("dst_type", "dst_value")
        if {"id_type", "value"} <= cols:
            parts += self._nodes("id_type", "value")
        if "raw_record" in cols:
            field_ = lambda name: F.get_json_object("raw_record", f"$.{name}")  # noqa: E731
            parts += [self._isin(F.trim(field_("member_id")), self.fp.member_ids),
                      self._isin(F.trim(field_("anonymous_id")), self.fp.cookies),
                      self._isin(F.trim(field_("device_id")), self.fp.devices),
                      self._isin(F.trim(field_("order_id")), self.fp.order_ids),
                      self._clear("email", field_("email")), self._clear("phone", field_("phone"))]
        kept = [p for p in parts if p is not None]
        return reduce(lambda a, b: a | b, kept) if kept else None
