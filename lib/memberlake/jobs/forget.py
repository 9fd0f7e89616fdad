"""forget: the right to be forgotten — delete a person from every table, then VACUUM.

``memberlake forget --email a@b.com --member-id web:123 --person-id P…`` resolves the request
through the identity graph to persons and their identifiers, deletes their rows from every
Delta table in the lakehouse (bronze, quarantine, silver, identity, sessions, profiles, scores,
recommendations: whatever has a matching column), purges deletion vectors, and VACUUMs the
touched tables with ``privacy.forget_vacuum_hours`` retention: once it has passed, the rows
cannot be read even with time travel or the change data feed. The request is recorded in
``forget_requests`` with keyed hashes of the identifiers, never the identifiers themselves.

Landing files are the source systems' copies and are not touched; delete them there (or let
their retention expire) so that a full re-ingest does not bring the person back.
"""
from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from memberlake.jobs.common import InputError, job_main, options
from memberlake.ops.context import job_context
from memberlake.privacy.erase import erase
from memberlake.settings import Settings

NAME = "forget"
HELP = "Right to be forgotten: delete persons (by id, e-mail, phone or member id) from every table."


@dataclass(frozen=True)
class Options:
    person_id: list[str] = field(default_factory=list)
    email: list[str] = field(default_factory=list)
    phone: list[str] = field(default_factory=list)
    member_id: list[str] = field(default_factory=list)
    request_id: str | None = None
    no_vacuum: bool = False


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--person-id", type=_list, default=[], help="comma-separated person ids")
    parser.add_argument("--email", type=_list, default=[], help="comma-separated e-mail addresses")
    parser.add_argument("--phone", type=_list, default=[], help="comma-separated phone numbers")
    parser.add_argument("--member-id", type=_list, default=[],
                        help="comma-separated member ids: source:member_id, or a bare member id")
    parser.add_argument("--request-id", help="your ticket id for the audit table (default: generated)")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="delete only; VACUUM later with `memberlake maintain` (time travel still reads the rows)")


def _requested(opts: Options) -> dict[str, list[str]]:
    requested = {"person_id": opts.person_id, "email": opts.email, "phone": opts.phone, "member_id": opts.member_id}
    if not any(requested.values()):
        raise InputError("forget: name at least one of --person-id, --email, --phone, --member-id")
    return requested


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    opts = options(Options, args)
    requested = _requested(opts)
    request_id = opts.request_id or uuid.uuid4().hex
    # The run record names the request, never the identifiers.
    params = {"request_id": request_id, "identifiers": sum(len(v) for v in requested.values()),
              "vacuum": not opts.no_vacuum}
    with job_context(spark, settings, NAME, params) as ctx:
        return erase(ctx, requested, request_id, vacuum=not opts.no_vacuum)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
