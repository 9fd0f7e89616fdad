"""Settings: merge order, typed overrides, and errors that name the key and the fix."""
from __future__ import annotations

import pytest

from memberlake.settings import SettingsError, load_settings, parse_override, with_overrides


def test_local_env_is_merged_over_base():
    s = load_settings("local")
    assert s.env == "local"
    assert s.spark.master == "local[*]"          # from local.yml
    assert s.clean.max_age_years == 110           # from base.yml
    assert s.storage.lakehouse == "data/lakehouse"


def test_overrides_are_typed_and_nested():
    s = load_settings("local", ["clean.max_quantity=500", "landing.decimal_comma=true",
                                "value.age_bands=[20, 40]", "storage.tables.silver_members=members_v2"])
    assert s.clean.max_quantity == 500
    assert s.landing.decimal_comma is True
    assert s.value.age_bands == [20, 40]
    assert s.storage.tables == {"silver_members": "members_v2"}


def test_later_override_wins():
    s = load_settings("local", ["spark.shuffle_partitions=4", "spark.shuffle_partitions=16"])
    assert s.spark.shuffle_partitions == 16


def test_unknown_key_names_the_key():
    with pytest.raises(SettingsError, match=r"clean\.max_quantty: unknown key"):
        load_settings("local", ["clean.max_quantty=5"])


def test_unknown_section_names_the_section():
    with pytest.raises(SettingsError, match=r"cleaning: unknown key"):
        load_settings("local", ["cleaning.max_quantity=5"])


def test_wrong_type_names_the_key_and_value():
    with pytest.raises(SettingsError, match=r"clean\.max_quantity: .*'many'"):
        load_settings("local", ["clean.max_quantity=many"])


def test_out_of_range_value_is_refused():
    with pytest.raises(SettingsError, match=r"spark\.shuffle_partitions"):
        load_settings("local", ["spark.shuffle_partitions=0"])


def test_generate_dates_must_be_ordered():
    with pytest.raises(SettingsError, match="start_date < cutoff_date < end_date"):
        load_settings("local", ["generate.cutoff_date=2030-01-01"])


@pytest.mark.parametrize("item", ["clean.max_quantity", "max_quantity=3", "=3"])
def test_malformed_set_is_explained(item):
    with pytest.raises(SettingsError, match="--set"):
        parse_override(item)


def test_bad_env_is_refused():
    with pytest.raises(SettingsError, match="--env 'prod'"):
        load_settings("prod")


def test_cluster_requires_landing_and_lakehouse():
    s = load_settings("cluster")
    assert s.spark.master is None                 # spark-submit decides
    with pytest.raises(SettingsError, match=r"landing\.path is required for env 'cluster'"):
        s.require("landing.path")
    with pytest.raises(SettingsError, match=r"storage\.lakehouse is required"):
        s.require("storage.lakehouse")


def test_databricks_uses_catalog_names():
    s = load_settings("databricks")
    assert s.storage.catalog_mode
    assert (s.storage.catalog, s.storage.db_schema) == ("main", "memberlake")


def test_with_overrides_validates_again():
    s = load_settings("local")
    assert with_overrides(s, landing={"timezone": "Europe/Berlin"}).landing.timezone == "Europe/Berlin"
    with pytest.raises(SettingsError, match="landing.multiline"):
        with_overrides(s, landing={"multiline": "sometimes"})


def test_conf_dir_without_base_is_explained(tmp_path):
    with pytest.raises(SettingsError, match="conf/base.yml not found"):
        load_settings("local", conf=str(tmp_path))


def _differences(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}{k}.")]
    return [] if a == b else [f"{path.rstrip('.')}: base.yml {a!r} != code {b!r}"]


def test_code_defaults_and_base_yml_agree_key_by_key():
    """One source of defaults: conf/base.yml loaded alone equals the settings classes' defaults."""
    import yaml

    from memberlake.settings import Settings, conf_dir

    data = yaml.safe_load((conf_dir(None) / "base.yml").read_text(encoding="utf-8"))
    from_yaml = Settings.model_validate({**data, "env": "local"}).model_dump(mode="json", by_alias=True)
    from_code = Settings.model_validate({"env": "local"}).model_dump(mode="json", by_alias=True)
    assert _differences(from_yaml, from_code) == []
    # every key of base.yml is a settings key (a stale key would be refused at load, but check the
    # walk sees the maps' contents too)
    assert from_code["clean"]["default_country"] == "US" and from_code["clean"]["gender_map"]["mrs"] == "female"


# -- YAML typing traps, Spark option keys, time zones (issue 25) -----------------------------------
@pytest.mark.parametrize("item, expected", [
    ("clean.default_country=NO", "NO"),          # YAML 1.1 reads NO as false
    ("clean.default_country=ON", "ON"),
    ("clean.default_currency=0", "0"),           # not the integer 0
    ("clean.default_currency=044", "044"),       # not the octal/int 44
])
def test_text_settings_take_the_text_as_given(item, expected):
    s = load_settings("local", [item])
    key = item.split("=")[0].split(".")[1]
    assert getattr(s.clean, key) == expected


@pytest.mark.parametrize("key", ["clean.country_calling_code", "clean.phone_trunk_prefix"])
def test_removed_phone_settings_say_what_replaced_them(key):
    with pytest.raises(SettingsError, match=rf"{key}: removed; phones are parsed with each row's own country"):
        load_settings("local", [f"{key}=44"])


def test_typed_settings_still_parse_as_yaml():
    s = load_settings("local", ["landing.multiline=no", "clean.max_quantity=7", "sessions.midnight_timezone=null"])
    assert s.landing.multiline is False and s.clean.max_quantity == 7 and s.sessions.midnight_timezone is None


def test_a_map_setting_keeps_the_dots_of_its_key():
    s = load_settings("local", ["spark.conf.spark.sql.shuffle.partitions=16",
                                "landing.column_map.orders.order_id=InvoiceNo", "value.tags.yes=frequency > 1"])
    assert s.spark.conf["spark.sql.shuffle.partitions"] == "16"
    assert s.landing.column_map["orders"] == {"order_id": "InvoiceNo"}
    assert s.value.tags["yes"] == "frequency > 1"          # a tag named "yes", rule as text


@pytest.mark.parametrize("item", ["sessions.midnight_timezone=Mars/Olympus", "landing.timezone=Europe/Londn"])
def test_unknown_time_zone_is_refused_at_load_naming_the_key(item):
    with pytest.raises(SettingsError, match=rf"^invalid settings: {item.split('=')[0]}: .*unknown time zone"):
        load_settings("local", [item])


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Asia/Shanghai", "+08:00", "UTC"])
def test_known_time_zones_load(zone):
    assert load_settings("local", [f"landing.timezone={zone}"]).landing.timezone == zone


def test_a_quoted_text_value_is_unquoted():
    assert load_settings("local", ["landing.delimiter=';'", 'clean.default_country="NO"']).landing.delimiter == ";"


def test_clv_model_is_auto_or_one_of_the_three():
    assert load_settings("local").value.clv.model == "auto"
    assert load_settings("local", ["value.clv.model=pareto_nbd"]).value.clv.model == "pareto_nbd"
    with pytest.raises(SettingsError, match=r"value\.clv\.model: .*'paretonbd'"):
        load_settings("local", ["value.clv.model=paretonbd"])
    with pytest.raises(SettingsError, match=r"value\.clv\.candidates"):
        load_settings("local", ["value.clv.candidates=[]"])


def test_a_pinned_forecast_model_is_one_the_job_fits():
    from typing import get_args

    from memberlake.forecast.models import ORDER
    from memberlake.settings import ForecastSettings

    assert get_args(ForecastSettings.model_fields["model"].annotation) == ("auto", *ORDER)
    with pytest.raises(SettingsError, match="forecast.model.*got 'MSTLx'"):
        with_overrides(load_settings("local"), forecast={"model": "MSTLx"})
