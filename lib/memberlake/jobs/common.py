"""What every job shares: its command-line options, settings resolution and a safe ``main``.

Each job module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(spark, settings, args)``; :func:`job_main` turns that into a console entry point and a
spark-submit script with the same options everywhere.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Sequence, TypeVar

from memberlake.errors import InputError, MissingInput  # noqa: F401  (re-exported for jobs)
from memberlake.settings import ENVIRONMENTS, Settings, SettingsError, load_settings, with_overrides

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2


def iso_date(value: str) -> date | None:
    """YYYY-MM-DD; an empty value (a scheduler's unset parameter) means "not given"."""
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD") from None


O = TypeVar("O")


def options(cls: type[O], args: argparse.Namespace) -> O:
    """A job's typed options (a dataclass) from the parsed command line. A pipeline's namespace
    holds every job's flags; each job takes its own fields (missing ones keep their defaults)."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None})


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options (every job)")
    group.add_argument("--env", choices=ENVIRONMENTS, default="local",
                       help="settings environment: conf/base.yml + conf/<env>.yml (default: local)")
    group.add_argument("--landing", metavar="DIR", help="raw landing files (sets landing.path)")
    group.add_argument("--lakehouse", metavar="DIR",
                       help="where the Delta tables live (sets storage.lakehouse); on Databricks use "
                            "--set storage.catalog=... --set storage.schema=...")
    group.add_argument("--as-of", type=iso_date, metavar="DATE",
                       help="as-of date (YYYY-MM-DD) for jobs that compute a snapshot")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a setting; repeatable, e.g. --set clean.max_quantity=500")
    group.add_argument("--conf-dir", metavar="DIR", help="folder of base.yml and <env>.yml (default: ./conf)")
    group.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    group.add_argument("--verbose", action="store_true",
                       help="also show Spark's and Ivy's own output (by default it goes to a log file, named "
                            "when the session starts)")


def add_entities_argument(parser: argparse.ArgumentParser) -> None:
    from memberlake.contract import ENTITIES

    parser.add_argument("--entities", type=lambda s: [e.strip() for e in s.split(",") if e.strip()],
                        default=list(ENTITIES), help=f"comma-separated subset of {','.join(ENTITIES)}")


def check_entities(entities: list[str], settings: Settings | None = None) -> None:
    """Entity names on the command line, in ``landing.column_map`` and in ``landing.column_defaults``
    must be contract entities."""
    from memberlake.contract import ENTITIES

    unknown = [e for e in entities if e not in ENTITIES]
    if unknown:
        raise InputError(f"--entities: unknown {unknown}; choose from {', '.join(ENTITIES)}")
    for setting in ("column_map", "column_defaults"):
        named = [e for e in (getattr(settings.landing, setting) if settings else {}) if e not in ENTITIES]
        if named:
            raise SettingsError(f"landing.{setting}: unknown entities {named}; choose from {', '.join(ENTITIES)}")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings a command runs with, every SQL rule in them checked (before Spark starts)."""
    from memberlake.rules import check_settings

    settings = load_settings(args.env, args.overrides, args.conf_dir)
    if getattr(args, "landing", None):
        settings = with_overrides(settings, landing={"path": args.landing})
    if getattr(args, "lakehouse", None):
        settings = with_overrides(settings, storage={"lakehouse": args.lakehouse, "catalog": None, "schema": None})
    check_settings(settings)
    return settings


def configure_logging(level: str = "INFO", verbose: bool = False) -> None:
    from memberlake.spark import show_spark_output

    show_spark_output(verbose)
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "urllib3", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def job_parser(job: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"memberlake {job.NAME}", description=job.HELP)
    job.add_arguments(parser)
    add_common_arguments(parser)
    return parser


def guarded(func, *args, **kwargs) -> int:
    """Run ``func``; turn configuration and prerequisite errors into a message and exit code."""
    from memberlake.spark import PrerequisiteError

    try:
        func(*args, **kwargs)
    except (SettingsError, PrerequisiteError, InputError) as exc:
        print(f"memberlake: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def saving_classes(exit_code: int) -> int:
    """After a successful command, write the JVM class archive it recorded (once per machine and
    version: ``memberlake.class_sharing``); the exit code passes through."""
    if exit_code == 0:
        from memberlake.class_sharing import save_pending

        save_pending()
    return exit_code


def job_main(job: ModuleType, argv: Sequence[str] | None = None) -> int:
    """Parse the job's options, make the session, run the job. Console and spark-submit entry."""
    parser = job_parser(job)
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.verbose)

    def body() -> None:
        from memberlake.spark import get_spark

        settings = settings_from_args(args)
        check_job_arguments(job, settings, args)
        job.run(get_spark(settings), settings, args)

    return saving_classes(guarded(body))


def check_job_arguments(job: ModuleType, settings, args: argparse.Namespace) -> None:
    """A job's own argument checks against the settings (its ``check``, when it has one), before
    Spark starts: a wrong argument fails in a second, not after the session is up."""
    check = getattr(job, "check", None)
    if check is not None:
        check(settings, args)
