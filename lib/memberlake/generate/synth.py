"""Synthetic landing data with ground truth, computed in Spark so it scales past driver memory.

Every attribute of a person is a pure function of the person's index (see ``random.Draws``),
so members, orders and events can each be generated from ``spark.range`` without joins and
agree with each other. What is planted, and recorded in the truth tables:

- persons with 1-3 member records in different sources: name typos, swapped first/last names,
  missing fields, email and phone format variants, moved addresses, exact re-sends;
- traps: households whose two persons share an email and a device, junk emails and phones
  shared by unrelated persons;
- orders with heavy-tailed activity per person, Zipf product popularity, planted co-purchase
  patterns, a year-end peak, cancellations and returns, guest checkouts with the member's
  email, and persons whose activity thins out and stops (churners);
- two demand shapes (``GenConfig.demand``). ``cutoff_study`` (the default) serves the churn
  labels: members join until 120 days before the churn cutoff, every churner stops by 30 days
  before it, and a person's orders (a number drawn from its activity) spread over its active
  span, so a late joiner buys faster. Weekly demand then falls by about a third in the months
  before the cutoff. ``steady`` has no such date: members join until 60 days before the end,
  churners stop at any time (also after the cutoff), and a person buys at a constant rate while
  active, so demand follows a smoothly growing base (what a demand forecast is judged on);
- clickstream sessions (gaps < 30 min inside, > 35 min between sessions of a visitor), UTM
  campaigns and referrers, logins tying cookies to members, purchases tied to orders; a known
  person browses from a month before signing up until a month after a churner stops buying;
- a small share of malformed values that ingest and clean must quarantine or flag.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from memberlake.generate import vocab as V
from memberlake.generate.random import Draws, constants

DAY = 86400
CHURN_WINDOW_DAYS = 90
# demand="steady": members join until SIGNUP_STOP_DAYS before the end; a churner buys for at
# least CHURN_MIN_DAYS, then stops after an exponential time with mean CHURN_MEAN_DAYS.
SIGNUP_STOP_DAYS = 60
CHURN_MIN_DAYS = 60
CHURN_MEAN_DAYS = 365
DEMANDS = ("cutoff_study", "steady")
BROWSE_MARGIN_DAYS = 30


def _mean_floor_exp(mean: float) -> float:
    """E[floor(X)] for X exponential with this mean: how long a drawn session is on average."""
    return 1.0 / (math.exp(1.0 / mean) - 1.0)


@dataclass(frozen=True)
class GenConfig:
    """Sizes derive from ``scale``: 1.0 = 1M member records, 5M orders, 10M events."""

    scale: float
    seed: int
    start: date
    cutoff: date
    end: date
    records_per_person: float = 1.32
    tracked_order_share: float = 0.08
    n_patterns: int = 10
    pattern_rate: float = 0.08
    events_per_record: float = 10.0
    demand: str = "cutoff_study"   # one of DEMANDS; module docstring

    @property
    def n_records(self) -> int:
        return max(50, int(round(1_000_000 * self.scale)))

    @property
    def n_persons(self) -> int:
        return max(40, int(self.n_records / self.records_per_person))

    @property
    def n_orders(self) -> int:
        return max(200, int(round(5_000_000 * self.scale)))

    @property
    def n_events(self) -> int:
        return max(500, int(round(1_000_000 * self.events_per_record * self.scale)))

    @property
    def n_products(self) -> int:
        return int(min(20_000, max(200, 20_000 * self.scale)))

    @property
    def partitions(self) -> int:
        return max(2, min(400, int(math.ceil(self.n_events / 500_000))))

    def epoch(self, d: date) -> int:
        """Seconds since 1970 at UTC midnight of ``d``."""
        return (d - date(1970, 1, 1)).days * DAY


class Generator:
    def __init__(self, spark: SparkSession, cfg: GenConfig) -> None:
        if cfg.demand not in DEMANDS:
            raise ValueError(f"generate.demand: {cfg.demand!r} is not one of {', '.join(DEMANDS)}")
        self.spark = spark
        self.cfg = cfg
        self.r = Draws(cfg.seed)

    # -- persons: everything is a function of pidx ------------------------------------------
    def head(self, pidx: Column) -> Column:
        """The household head: an odd index joins the even one before it in 3% of households."""
        is_member = (F.pmod(pidx, 2) == 1) & self.r.below(0.03, "household", pidx - 1)
        return F.when(is_member, pidx - 1).otherwise(pidx)

    def person_id(self, pidx: Column) -> Column:
        return F.format_string("P%08d", pidx)

    def n_records(self, pidx: Column) -> Column:
        return 1 + self.r.below(0.22, "dup1", pidx).cast("int") + self.r.below(0.05, "dup2", pidx).cast("int")

    def member_id(self, pidx: Column, k: Column) -> Column:
        """Unique per (person, record): a bijective scramble of pidx*3+k in 10^10."""
        scrambled = F.pmod((pidx * 3 + k) * F.lit(387420489) + F.lit(12345), F.lit(10_000_000_000))
        return F.format_string("M%010d", scrambled)

    def n_cookies(self, pidx: Column) -> Column:
        return 1 + self.r.int_below(3, "ncookies", pidx).cast("int")

    def n_devices(self, pidx: Column) -> Column:
        return 1 + self.r.below(0.4, "ndevices", pidx).cast("int")

    def cookie(self, pidx: Column, c: Column) -> Column:
        return self.r.hex_id("c", "cookie", pidx, c)

    def device(self, pidx: Column, c: Column) -> Column:
        """Cookie c lives on device c mod n_devices; a household shares its head's device 0."""
        d = F.pmod(c, self.n_devices(pidx))
        owner = F.when(d == 0, self.head(pidx)).otherwise(pidx)
        return self.r.hex_id("d", "device", owner, d)

    @property
    def steady(self) -> bool:
        return self.cfg.demand == "steady"

    def signup_epoch(self, pidx: Column) -> Column:
        """Members join at an even rate from the start until 120 days before the churn cutoff
        (cutoff_study) or SIGNUP_STOP_DAYS before the end (steady)."""
        lo = self.cfg.epoch(self.cfg.start)
        hi = (self.cfg.epoch(self.cfg.end) - SIGNUP_STOP_DAYS * DAY if self.steady
              else self.cfg.epoch(self.cfg.cutoff) - 120 * DAY)
        return (lo + self.r.u("signup", pidx) * (hi - lo)).cast("long")

    def is_churner(self, pidx: Column) -> Column:
        return self.r.below(0.35, "churner", pidx)

    def active_end_epoch(self, pidx: Column) -> Column:
        """A churner stops at a uniform date between 60 days after joining and 30 days before the
        churn cutoff (cutoff_study), or CHURN_MIN_DAYS plus an exponential time after joining, the
        same hazard on every date (steady; one who would stop after the end is active to it)."""
        signup = self.signup_epoch(pidx)
        end = self.cfg.epoch(self.cfg.end) - 1
        if self.steady:
            churn = F.least(signup + (CHURN_MIN_DAYS + self.r.exponential(CHURN_MEAN_DAYS, "churn_at", pidx)) * DAY,
                            F.lit(end))
        else:
            last = self.cfg.epoch(self.cfg.cutoff) - 30 * DAY
            churn = signup + 60 * DAY + self.r.u("churn_at", pidx) * (F.lit(last) - signup - 60 * DAY)
        return F.when(self.is_churner(pidx), churn.cast("long")).otherwise(F.lit(end))

    def activity(self, pidx: Column) -> Column:
        """Heavy-tailed order rate: lognormal with mean 1."""
        sigma = 1.0
        return F.exp(self.r.normal("activity", pidx) * sigma - sigma * sigma / 2)

    def person_frame(self) -> DataFrame:
        """The true persons with their canonical attributes."""
        p = F.col("pidx")
        h = self.head(p)
        female = self.r.below(0.5, "gender", p)
        first = F.when(female, self.r.pick(V.FIRST_NAMES_F, "first", p, skew=1.6)).otherwise(
            self.r.pick(V.FIRST_NAMES_M, "first", p, skew=1.6))
        last = self.r.pick(V.LAST_NAMES, "last", h, skew=1.4)
        head_first = F.when(self.r.below(0.5, "gender", h), self.r.pick(V.FIRST_NAMES_F, "first", h, skew=1.6)).otherwise(
            self.r.pick(V.FIRST_NAMES_M, "first", h, skew=1.6))
        sep = self.r.pick([".", "_", ""], "email_sep", h)
        local = F.lower(F.concat(head_first, sep, F.regexp_replace(last, "'", ""), F.pmod(h, F.lit(10000)).cast("string")))
        email = F.concat(local, F.lit("@"), self.r.pick(V.EMAIL_DOMAINS, "domain", h, skew=1.5))
        area = self.r.pick(V.AREA_CODES, "area", p)
        phone = F.concat(area, (200 + self.r.int_below(800, "exchange", p)).cast("string"),
                         F.lpad(self.r.int_below(10000, "line", p).cast("string"), 4, "0"))
        return (
            self.spark.range(0, self.cfg.n_persons, numPartitions=self.cfg.partitions)
            .withColumnRenamed("id", "pidx")
            .select(
                "pidx",
                self.person_id(p).alias("person_id"),
                h.alias("head"),
                F.when(female, "female").otherwise("male").alias("gender"),
                first.alias("first_name"),
                last.alias("last_name"),
                F.date_add(F.lit("1945-01-01").cast("date"), self.r.int_below(365 * 62, "birth", p).cast("int")).alias("birth_date"),
                email.alias("email"),
                phone.alias("phone"),
                *[c.alias(name) for name, c in self._address(h, "home").items()],
                self.n_records(p).alias("n_records"),
                self.is_churner(p).alias("is_churner"),
            )
        )

    def _address(self, key: Column, salt: str) -> dict[str, Column]:
        city = self.r.int_below(len(V.CITIES), salt + "city", key).cast("int") + 1
        cities = constants([c[0] for c in V.CITIES])
        states = constants([c[1] for c in V.CITIES])
        zips = constants([c[2] for c in V.CITIES])
        street = F.concat_ws(" ", (1 + self.r.int_below(9899, salt + "no", key)).cast("string"),
                             self.r.pick(V.STREETS, salt + "street", key), self.r.pick(V.STREET_TYPES, salt + "type", key))
        return {
            "street": street,
            "city": F.element_at(cities, city),
            "state": F.element_at(states, city),
            "postcode": F.concat(F.element_at(zips, city), F.lpad(self.r.int_below(100, salt + "zip", key).cast("string"), 2, "0")),
        }

    # -- member records --------------------------------------------------------------------
    def members(self, persons: DataFrame) -> tuple[DataFrame, DataFrame]:
        """(landing members, member truth)."""
        r = self.r
        p, k = F.col("pidx"), F.col("k")
        records = persons.select("*", F.explode(F.sequence(F.lit(0), F.col("n_records") - 1)).alias("k"))
        primary = r.weighted(V.SOURCES, [0.4, 0.2, 0.2, 0.2], "source", p)
        sources = constants(V.SOURCES)
        primary_index = F.array_position(sources, primary)
        source = F.when(k == 0, primary).otherwise(
            F.element_at(sources, (F.pmod(primary_index - 1 + k, F.lit(len(V.SOURCES))) + 1).cast("int")))
        dup = k > 0
        typo_at = 2 + r.int_below(F.greatest(F.length("first_name") - 1, F.lit(1)), "typo_at", p, k).cast("int")
        dropped = F.concat(F.substring(F.col("first_name"), F.lit(1), typo_at - 1),
                           F.substring(F.col("first_name"), typo_at + 1, F.lit(100)))
        first = F.when(dup & r.below(0.25, "typo", p, k), dropped).otherwise(F.col("first_name"))
        swapped = dup & r.below(0.05, "swap", p, k)
        first_out = F.when(swapped, F.col("last_name")).otherwise(first)
        last_out = F.when(swapped, first).otherwise(F.col("last_name"))
        name_case = r.weighted(["title", "upper", "lower"], [0.85, 0.1, 0.05], "case", p, k)

        def cased(c: Column) -> Column:
            return F.when(name_case == "upper", F.upper(c)).when(name_case == "lower", F.lower(c)).otherwise(c)

        junk_email = r.below(0.008, "junk_email", p, k)
        junk_phone = r.below(0.008, "junk_phone", p, k)
        email_variant = r.weighted(["plain", "upper", "spaced"], [0.7, 0.2, 0.1], "email_variant", p, k)
        email = (F.when(email_variant == "upper", F.upper("email"))
                 .when(email_variant == "spaced", F.concat(F.lit(" "), F.col("email"), F.lit(" ")))
                 .otherwise(F.col("email")))
        email = (F.when(junk_email, r.pick(V.JUNK_EMAILS, "junk_email_value", p, k))
                 .when(dup & r.below(0.25, "no_email", p, k), F.lit(None))
                 .otherwise(email))
        phone = F.when(junk_phone, r.pick(V.JUNK_PHONES, "junk_phone_value", p, k)).when(
            dup & r.below(0.25, "no_phone", p, k), F.lit(None)).otherwise(self._phone_format(F.col("phone"), p, k))
        moved = dup & r.below(0.15, "moved", p, k)
        moved_address = self._address(p * 7919 + k, "moved")
        address = {name: F.when(moved, alt).otherwise(F.col(name)) for name, alt in moved_address.items()}
        unit = r.weighted(["none", "comma", "newline"], [0.9, 0.09, 0.01], "unit", p, k)
        street = (F.when(unit == "comma", F.concat(address["street"], F.lit(", Apt "), (1 + r.int_below(40, "apt", p)).cast("string")))
                  .when(unit == "newline", F.concat(address["street"], F.lit("\nBuilding "), F.lit("B")))
                  .otherwise(address["street"]))
        zip_variant = r.weighted(["plain", "zip4", "excel"], [0.8, 0.1, 0.1], "zip_variant", p, k)
        postcode = (F.when(zip_variant == "zip4", F.concat(address["postcode"], F.lit("-"), F.lpad(r.int_below(10000, "zip4", p).cast("string"), 4, "0")))
                    .when(zip_variant == "excel", F.regexp_replace(address["postcode"], "^0+", ""))
                    .otherwise(address["postcode"]))
        birth = (F.when(r.below(0.002, "bad_birth", p, k), F.lit("not a date"))
                 .when(r.below(0.002, "old_birth", p, k), F.lit("1890-05-01"))
                 .when(dup & r.below(0.3, "no_birth", p, k), F.lit(None))
                 .otherwise(F.date_format("birth_date", "yyyy-MM-dd")))
        gender = F.when(F.col("gender") == "female", r.pick(["F", "female", "Female", "w", ""], "gender_f", p, k)).otherwise(
            r.pick(["M", "male", "Male", "m", ""], "gender_m", p, k))
        registered = self.signup_epoch(p) + k * 30 * DAY + r.int_below(DAY, "reg_s", p, k)
        updated = registered + r.int_below(200 * DAY, "upd_s", p, k)
        member_id = F.when(r.below(0.001, "no_member_id", p, k), F.lit(None)).otherwise(self.member_id(p, k))
        landing = records.select(
            member_id.alias("member_id"),
            source.alias("source"),
            cased(first_out).alias("first_name"),
            cased(last_out).alias("last_name"),
            gender.alias("gender"),
            birth.alias("birth_date"),
            email.alias("email"),
            phone.alias("phone"),
            street.alias("street"),
            address["city"].alias("city"),
            postcode.alias("postcode"),
            address["state"].alias("state"),
            r.pick(["US", "USA", "United States", "us", ""], "country", p, k).alias("country"),
            self._iso(registered, "naive").alias("registered_at"),
            self._iso(updated, "z").alias("updated_at"),
            r.pick(["yes", "no", "true", "false", "1", "0", "Y", "N", ""], "optin", p, k).alias("marketing_opt_in"),
            F.col("person_id"), p, k, junk_email.alias("junk_email"), junk_phone.alias("junk_phone"),
        )
        resend = landing.where(self.r.below(0.02, "resend", p, k)).select(
            *[F.col(c) for c in landing.columns if c != "updated_at"],
            self._iso(updated + 10 * DAY, "z").alias("updated_at"),
        ).select(*landing.columns)
        all_rows = landing.unionByName(resend)
        truth = landing.where(F.col("member_id").isNotNull()).select(
            "source", "member_id", "person_id", "junk_email", "junk_phone")
        return all_rows.drop("person_id", "pidx", "k", "junk_email", "junk_phone"), truth

    def _phone_format(self, digits: Column, *keys: Column) -> Column:
        a, e, l4 = F.substring(digits, 1, 3), F.substring(digits, 4, 3), F.substring(digits, 7, 4)
        style = self.r.int_below(6, "phone_style", *keys)
        return (
            F.when(style == 0, F.format_string("(%s) %s-%s", a, e, l4))
            .when(style == 1, F.concat_ws("-", a, e, l4))
            .when(style == 2, F.format_string("+1 %s %s %s", a, e, l4))
            .when(style == 3, digits)
            .when(style == 4, F.format_string("1-%s-%s-%s", a, e, l4))
            .otherwise(F.concat_ws(".", a, e, l4))
        )

    def _iso(self, epoch: Column, style: str) -> Column:
        ts = F.timestamp_seconds(epoch)
        if style == "z":
            return F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss'Z'")
        if style == "offset":  # the same instant written in US Eastern standard time
            return F.concat(F.date_format(F.timestamp_seconds(epoch - 5 * 3600), "yyyy-MM-dd'T'HH:mm:ss"), F.lit("-05:00"))
        return F.date_format(ts, "yyyy-MM-dd HH:mm:ss")

    # -- products --------------------------------------------------------------------------
    def product_id(self, idx: Column) -> Column:
        return F.format_string("SKU%06d", idx)

    def product_price(self, idx: Column) -> Column:
        """List price, lognormal around 13 with a long tail; ends in .99."""
        raw = F.exp(F.lit(2.6) + self.r.normal("price", idx) * 0.7)
        return (F.greatest(F.round(raw), F.lit(1.0)) - 0.01).cast("decimal(18,2)")

    def popular_product(self, salt: str, *keys: Column) -> Column:
        """Zipf-like popularity: product index i is drawn with weight ~ 1/(i+1)."""
        n = self.cfg.n_products
        rank = F.floor(F.exp(self.r.u(salt, *keys) * math.log(n + 1))) - 1
        return F.least(F.greatest(rank, F.lit(0)), F.lit(n - 1)).cast("long")

    def patterns(self) -> list[list[int]]:
        """Planted co-purchase patterns: product indices of mid popularity."""
        return [[25 + 3 * i, 26 + 3 * i] + ([27 + 3 * i] if i % 2 == 0 else []) for i in range(self.cfg.n_patterns)]

    def products(self) -> DataFrame:
        i = F.col("id")
        pairs = [(c, s) for c, subs in V.CATEGORIES.items() for s in subs]
        pair = self.r.int_below(len(pairs), "category", i).cast("int") + 1
        category = F.element_at(constants([c for c, _ in pairs]), pair)
        subcategory = F.element_at(constants([s for _, s in pairs]), pair)
        brand = self.r.pick(V.BRANDS, "brand", i, skew=1.3)
        price = self.product_price(i)
        return self.spark.range(0, self.cfg.n_products, numPartitions=1).select(
            self.product_id(i).alias("product_id"),
            F.concat_ws(" ", brand, subcategory, F.format_string("#%d", i)).alias("product_name"),
            category.alias("category"),
            subcategory.alias("subcategory"),
            brand.alias("brand"),
            F.when(self.r.below(0.03, "price_fmt", i), F.concat(F.lit("$"), price.cast("string")))
            .otherwise(price.cast("string")).alias("list_price"),
        )

    # -- orders and items ------------------------------------------------------------------
    def order_facts(self, persons: DataFrame) -> DataFrame:
        """One row per order with typed values (the landing files are formatted from it)."""
        r, p = self.r, F.col("pidx")
        mean_orders = self.cfg.n_orders / self.cfg.n_persons
        signup, end = self.signup_epoch(p), self.active_end_epoch(p)
        if self.steady:
            # a constant rate while active: the orders grow with the active span (a late joiner
            # does not buy faster), so the weekly total follows the active base
            span_days = (end - signup) / DAY
            mean_span = persons.agg(F.avg(span_days)).first()[0]   # one number
            expected = self.activity(p) * (mean_orders / max(float(mean_span or 0.0), 1.0)) * span_days
        else:
            expected = self.activity(p) * mean_orders   # spread over the active span, however long
        count = F.least(F.floor(expected + r.u("norders", p)), F.lit(9999)).cast("int")
        j = F.col("j")
        # Non-churners buy at an even rate; a churner's orders thin out before they stop (density
        # falling linearly from 1.5 to 0.5 over the active span: inverse CDF 1.5 - sqrt(2.25 - 2u)).
        u = r.u("order_ts", p, j)
        share = F.when(self.is_churner(p), F.lit(1.5) - F.sqrt(F.lit(2.25) - 2 * u)).otherwise(u)
        ts = signup + share * (end - signup)
        peak = F.unix_timestamp(F.make_date(F.year(F.timestamp_seconds(ts)), F.lit(11), F.lit(20)).cast("timestamp"))
        peak_ts = peak + r.u("peak_ts", p, j) * 35 * DAY
        in_peak = r.below(0.15, "peak", p, j) & (peak_ts > signup) & (peak_ts < end)
        guest = r.below(0.12, "guest", p, j)
        record = r.int_below(F.col("n_records"), "order_record", p, j).cast("int")
        return (
            persons.select("pidx", "person_id", "email", "phone", "n_records",
                           F.explode(F.sequence(F.lit(0), count - 1)).alias("j"))
            .select(
                "pidx", "person_id", "j", "email", "phone",
                F.format_string("O%d%04d", p, j).alias("order_id"),
                F.when(in_peak, peak_ts).otherwise(ts).cast("long").alias("order_epoch"),
                r.weighted(["online", "store", "app"], [0.5, 0.3, 0.2], "channel", p, j).alias("channel"),
                r.weighted(["completed", "cancelled", "returned"], [0.9, 0.05, 0.05], "status", p, j).alias("status"),
                guest.alias("guest"),
                F.when(~guest, self.member_id(p, record)).alias("member_id"),
            )
        )

    def items(self, orders: DataFrame) -> DataFrame:
        """Typed order lines; a share of orders carries a planted pattern."""
        r, o = self.r, F.col("order_id")
        patterns = F.array(*[F.array(*[F.lit(x) for x in pat]) for pat in self.patterns()])
        pattern_id = F.when(r.below(self.cfg.pattern_rate, "has_pattern", o), r.int_below(self.cfg.n_patterns, "pattern", o))
        # Spark 4.0.1 types element_at(array literal, index) as never null, whatever the index: with
        # a null index compiled code then returns the last pattern (interpreted code: null that
        # a later IS NOT NULL is optimised away). The CASE keeps orders without a pattern at null.
        pattern = F.when(pattern_id.isNotNull(), F.element_at(patterns, (pattern_id + 1).cast("int")))
        n_lines = F.least(F.lit(8), 1 + F.floor(r.exponential(0.9, "nlines", o))).cast("int")
        total = F.greatest(n_lines, F.coalesce(F.size(pattern), F.lit(0)))
        line = F.col("line")
        in_pattern = F.col("pattern").isNotNull() & (line < F.size("pattern"))
        product = F.when(in_pattern, F.element_at(F.col("pattern"), (line + 1).cast("int"))).otherwise(
            self.popular_product("item", o, line))
        quantity = (1 + F.floor(r.exponential(0.4, "qty", o, line))).cast("int")
        price = self.product_price(F.col("product_idx"))
        gross = F.col("quantity") * price
        discount = F.when(r.below(0.2, "discounted", o, line),
                          F.round(gross * (0.1 + 0.2 * r.u("discount", o, line)), 2)).otherwise(F.lit(0))
        return (
            orders.select("order_id", pattern.alias("pattern"), F.explode(F.sequence(F.lit(0), total - 1)).alias("line"))
            .select("order_id", "line", product.alias("product_idx"), quantity.alias("quantity"))
            .select("order_id", (F.col("line") + 1).alias("line_no"), "product_idx", "quantity",
                    price.alias("unit_price"), discount.cast("decimal(18,2)").alias("discount_amount"))
        )

    def orders_landing(self, facts: DataFrame, items: DataFrame) -> DataFrame:
        r, o = self.r, F.col("order_id")
        totals = items.groupBy("order_id").agg(
            F.sum(F.col("quantity") * F.col("unit_price") - F.col("discount_amount")).cast("decimal(18,2)").alias("total"))
        style = r.weighted(["z", "offset", "naive"], [0.3, 0.3, 0.4], "ts_style", o)
        epoch = F.col("order_epoch")
        ts = (F.when(style == "z", self._iso(epoch, "z")).when(style == "offset", self._iso(epoch, "offset"))
              .otherwise(self._iso(epoch, "naive")))
        ts = F.when(r.below(0.0005, "bad_ts", o), F.lit("yesterday")).otherwise(ts)
        email = F.when(F.col("guest") | r.below(0.4, "order_email", o), F.col("email"))
        email = F.when(r.below(0.3, "email_upper", o), F.upper(email)).otherwise(email)
        phone = F.when(F.col("guest") & r.below(0.5, "order_phone", o), self._phone_format(F.col("phone"), o))
        total = F.when(r.below(0.0005, "neg_total", o), -F.col("total")).otherwise(F.col("total"))
        return facts.join(totals, on="order_id", how="left").select(
            "order_id",
            F.col("member_id"),
            email.alias("email"),
            phone.alias("phone"),
            ts.alias("order_ts"),
            F.when(r.below(0.1, "channel_case", o), F.upper("channel")).otherwise(F.col("channel")).alias("channel"),
            F.when(F.col("channel") == "store", F.format_string("S%03d", 1 + r.int_below(50, "store", F.col("pidx")))).alias("store_id"),
            F.col("status"),
            F.when(r.below(0.9, "currency", o), F.lit("USD")).alias("currency"),
            total.cast("string").alias("total_amount"),
        )

    def items_landing(self, items: DataFrame) -> DataFrame:
        r, o, line = self.r, F.col("order_id"), F.col("line_no")
        quantity = F.when(r.below(0.0005, "neg_qty", o, line), F.lit("-1")).otherwise(F.col("quantity").cast("string"))
        price = F.when(r.below(0.05, "price_fmt", o, line), F.concat(F.lit("$"), F.col("unit_price").cast("string"))).otherwise(
            F.col("unit_price").cast("string"))
        return items.select(
            "order_id", F.col("line_no").cast("string").alias("line_no"),
            self.product_id(F.col("product_idx")).alias("product_id"),
            quantity.alias("quantity"), price.alias("unit_price"),
            F.col("discount_amount").cast("string").alias("discount_amount"),
        )

    # -- clickstream -----------------------------------------------------------------------
    def sessions(self, facts: DataFrame) -> DataFrame:
        """Planted sessions (one row each) of known visitors and anonymous ones."""
        r, cfg = self.r, self.cfg
        o, p = F.col("order_id"), F.col("pidx")
        cookie = r.int_below(self.n_cookies(p), "order_cookie", o)
        order_events = F.least(F.lit(30), 5 + F.floor(r.exponential(3.0, "order_len", o))).cast("int")
        order_sessions = facts.where(F.col("channel").isin("online", "app") & r.below(cfg.tracked_order_share, "tracked", o)).select(
            p, self.cookie(p, cookie).alias("anonymous_id"), self.device(p, cookie).alias("device_id"),
            (F.col("order_epoch") - (order_events - 1) * 90 - 40).alias("start_epoch"),
            order_events.alias("n_events"), o,
            F.when(F.col("member_id").isNotNull() & r.below(0.6, "order_login", o), F.col("member_id")).alias("login_member_id"),
            F.lit("order").alias("kind"),
        )
        order_event_estimate = cfg.n_orders * 0.7 * cfg.tracked_order_share * (5 + _mean_floor_exp(3.0))
        n_browse = max(100, int((cfg.n_events - order_event_estimate) / (1 + _mean_floor_exp(3.3))))
        n_anonymous = max(10, int(n_browse * 0.3 / 2))
        s = F.col("id")
        anonymous = r.below(0.3, "anonymous", s)
        person = r.int_below(cfg.n_persons, "browse_person", s)
        bc = r.int_below(self.n_cookies(person), "browse_cookie", s)
        visitor = r.int_below(n_anonymous, "anon_visitor", s)
        lo, hi = cfg.epoch(cfg.start), cfg.epoch(cfg.end) - DAY
        # A known person browses from a month before signing up until a month after the
        # activity of a churner ends (churned customers stop visiting); anonymous visitors any time.
        p_lo = F.greatest(F.lit(lo), self.signup_epoch(person) - BROWSE_MARGIN_DAYS * DAY)
        p_hi = F.least(F.lit(hi), self.active_end_epoch(person) + BROWSE_MARGIN_DAYS * DAY)
        start = F.when(anonymous, lo + r.u("browse_start", s) * (hi - lo)).otherwise(
            p_lo + r.u("browse_start", s) * (p_hi - p_lo))
        browse_events = F.least(F.lit(40), 1 + F.floor(r.exponential(3.3, "browse_len", s))).cast("int")
        login = ~anonymous & (browse_events >= 2) & r.below(0.2, "browse_login", s)
        record = r.int_below(self.n_records(person), "browse_record", s)
        browse = self.spark.range(0, n_browse, numPartitions=cfg.partitions).select(
            F.when(~anonymous, person).alias("pidx"),
            F.when(anonymous, r.hex_id("a", "anon", visitor)).otherwise(self.cookie(person, bc)).alias("anonymous_id"),
            F.when(anonymous, r.hex_id("v", "anon_device", visitor)).otherwise(self.device(person, bc)).alias("device_id"),
            start.cast("long").alias("start_epoch"),
            browse_events.alias("n_events"),
            F.lit(None).cast("string").alias("order_id"),
            F.when(login, self.member_id(person, record)).alias("login_member_id"),
            F.lit("browse").alias("kind"),
        )
        sessions = order_sessions.unionByName(browse).select(
            "*", (F.col("start_epoch") + (F.col("n_events") - 1) * 90 + 80).alias("end_bound"))
        by_visitor = Window.partitionBy("anonymous_id").orderBy("start_epoch", "kind", "order_id").rowsBetween(
            Window.unboundedPreceding, -1)
        gap_ok = F.col("start_epoch") > F.max("end_bound").over(by_visitor) + 35 * 60
        return (sessions.select("*", F.coalesce(gap_ok, F.lit(True)).alias("keep")).where("keep").drop("keep")
                .select("*", F.concat_ws("-", "anonymous_id", F.col("start_epoch").cast("string")).alias("session_key")))

    def events(self, sessions: DataFrame) -> DataFrame:
        """Events of the planted sessions, with ``session_key`` kept for the truth."""
        r = self.r
        key, j, n = F.col("session_key"), F.col("j"), F.col("n_events")
        is_order = F.col("kind") == "order"
        logged = F.col("login_member_id").isNotNull()
        browse_type = r.weighted(["page_view", "product_view", "search", "add_to_cart"], [0.35, 0.4, 0.1, 0.15], "etype", key, j)
        event_type = (
            F.when(is_order & (j == n - 1), F.lit("purchase"))
            .when(is_order & (j == n - 2), F.lit("checkout"))
            .when(is_order & (j == n - 3), F.lit("add_to_cart"))
            .when(j == 0, F.lit("page_view"))
            .when(logged & (j == 1), F.lit("login"))
            .otherwise(browse_type)
        )
        weights = [t[4] for t in V.TRAFFIC]
        traffic = r.weighted(list(range(len(V.TRAFFIC))), weights, "traffic", key)
        src = F.element_at(constants([t[1] for t in V.TRAFFIC]), (traffic + 1).cast("int"))
        med = F.element_at(constants([t[2] for t in V.TRAFFIC]), (traffic + 1).cast("int"))
        ref = F.element_at(constants([t[3] for t in V.TRAFFIC]), (traffic + 1).cast("int"))
        campaign = F.when(src.isNotNull(), r.pick(V.CAMPAIGNS, "campaign", key))
        first = j == 0
        product = self.product_id(self.popular_product("event_product", key, j))
        epoch = F.col("start_epoch") + j * 90 + r.int_below(80, "event_gap", key, j)
        ts = F.date_format(F.timestamp_seconds(epoch), "yyyy-MM-dd'T'HH:mm:ss'Z'")
        url = (F.when(F.col("event_type") == "product_view", F.concat(F.lit("https://shop.example.com/p/"), F.col("product_id")))
               .when(F.col("event_type") == "search", F.lit("https://shop.example.com/search"))
               .when(F.col("event_type") == "add_to_cart", F.lit("https://shop.example.com/cart"))
               .when(F.col("event_type") == "checkout", F.lit("https://shop.example.com/checkout"))
               .when(F.col("event_type") == "purchase", F.lit("https://shop.example.com/checkout/confirmation"))
               .when(F.col("event_type") == "login", F.lit("https://shop.example.com/account/login"))
               .otherwise(F.lit("https://shop.example.com/")))
        exploded = sessions.select("*", F.explode(F.sequence(F.lit(0), n - 1)).alias("j"))
        typed = exploded.select(
            "session_key", "j", "pidx", "anonymous_id", "device_id",
            r.hex_id("e", "event", key, j, length=20).alias("event_id"),
            F.when(r.below(0.0005, "bad_event_ts", key, j), F.lit("not-a-time")).otherwise(ts).alias("event_ts"),
            event_type.alias("event_type"),
            F.when(logged & (j >= 1), F.col("login_member_id")).alias("member_id"),
            F.when(first, ref).alias("referrer"),
            F.when(first, src).alias("utm_source"),
            F.when(first, med).alias("utm_medium"),
            F.when(first, campaign).alias("utm_campaign"),
            F.when(event_type.isin("product_view", "add_to_cart"), product).alias("product_id"),
            F.when(event_type == "purchase", F.col("order_id")).alias("order_id"),
        )
        return typed.select("*", url.alias("page_url"))

    # -- reviews ---------------------------------------------------------------------------
    def reviews(self, facts: DataFrame, items: DataFrame) -> DataFrame:
        """Reviews of a share of completed orders (first line's product), English or Chinese by
        person, with the planted sentiment kept for the truth (``planted``, ``polarity``).

        A person's reviews share a disposition; a churner's sentiment falls over the active span
        (reviews sour before they leave). Ratings follow the planted sentiment with noise, some
        missing; texts are template sentences with negation, intensifiers, sarcasm (negative),
        mixed reviews (one aspect praised, one criticised), typos; a few rows are invalid.
        """
        r, p, o = self.r, F.col("pidx"), F.col("order_id")
        first = items.where(F.col("line_no") == 1).select("order_id", "product_idx")
        done = facts.where((F.col("status") == "completed") & r.below(0.2, "reviewed", o)).join(first, "order_id")
        span = F.greatest(self.active_end_epoch(p) - self.signup_epoch(p), F.lit(DAY))
        through = F.least(F.greatest((F.col("order_epoch") - self.signup_epoch(p)) / span, F.lit(0.0)), F.lit(1.0))
        drop = F.when(self.is_churner(p), 1.6 * through).otherwise(F.lit(0.0))
        planted = 0.8 * r.normal("disposition", p) + 0.6 * r.normal("review_mood", o) + 0.4 - drop
        zh = r.below(0.2, "review_zh", p)
        u_sarcasm = r.below(0.05, "sarcasm", o)
        polarity = (F.when(u_sarcasm & (F.col("planted") < 0), F.lit("sarcasm"))
                    .when(F.col("planted") > 0.6, F.lit("positive")).when(F.col("planted") < -0.6, F.lit("negative"))
                    .when(F.abs(F.col("planted")) < 0.2, F.lit("neutral")).otherwise(F.lit("mixed")))
        rating = F.least(F.greatest(F.round(F.lit(3.0) + 1.3 * F.col("planted") + 0.5 * r.normal("rating", o)),
                                    F.lit(1.0)), F.lit(5.0)).cast("int")
        text = F.when(zh, self._review_text(V.REVIEW_ZH, "", o)).otherwise(self._review_text(V.REVIEW_EN, " ", o))
        typo = r.below(0.06, "typo", o) & ~zh
        text = F.when(typo, F.regexp_replace(F.regexp_replace(text, r"\bthe\b", "teh"), r"\bvery\b", "vrey")
                      ).otherwise(text)
        bad = r.u("review_bad", o)
        created = F.col("order_epoch") + (2 + r.int_below(20, "review_delay", o)) * DAY
        return (done.select("*", planted.alias("planted"), zh.alias("zh")).select("*", polarity.alias("polarity"))
                .select(
                    F.concat(F.lit("R"), o).alias("review_id"),
                    F.when(~F.col("guest"), F.col("member_id")).alias("member_id"),
                    F.when(F.col("guest"), F.col("email")).alias("email"),
                    F.lit(None).cast("string").alias("phone"),
                    o.alias("order_id"),
                    self.product_id(F.col("product_idx")).alias("product_id"),
                    F.when(bad < 0.003, F.lit("6")).when(r.below(0.15, "no_rating", o), F.lit(None))
                    .otherwise(rating.cast("string")).alias("rating"),
                    F.when(r.below(0.3, "has_title", o) & (bad >= 0.006),
                           F.when(F.col("zh"), F.lit("评价")).otherwise(F.lit("My review"))).alias("title"),
                    F.when(bad >= 0.006, text).alias("body"),
                    F.when(r.below(0.5, "lang_given", o), F.when(F.col("zh"), F.lit("zh-CN")).otherwise(F.lit("en")))
                    .alias("language"),
                    self._iso(created.cast("long"), "naive").alias("created_at"),
                    r.pick(V.REVIEW_CHANNELS, "review_channel", o).alias("channel"),
                    "person_id", "planted", "polarity",
                ))

    def _review_text(self, vocab: dict, space: str, o: Column) -> Column:
        """A review from the templates: by ``polarity``, aspect sentences and an overall one."""
        r = self.r
        aspects = list(vocab["positive"])

        def one(options: list[str], salt: str) -> Column:
            arr = constants(options)
            return F.element_at(arr, (r.int_below(len(options), salt, o) + 1).cast("int"))

        def aspect_sentence(kind: str, index: Column, salt: str) -> Column:
            expr = None
            for i, name in enumerate(aspects):
                sentence = one(vocab[kind][name], f"{salt}:{name}")
                expr = F.when(index == i, sentence) if expr is None else expr.when(index == i, sentence)
            return expr.otherwise(F.lit(""))

        a1 = r.int_below(len(aspects), "aspect1", o)
        a2 = F.pmod(a1 + 1 + r.int_below(len(aspects) - 1, "aspect2", o), F.lit(len(aspects)))
        but = "但是" if not space else " But "
        pol = F.col("polarity")
        text = (F.when(pol == "positive", F.concat(aspect_sentence("positive", a1, "pa"), F.lit(space),
                                                   one(vocab["overall_positive"], "op")))
                .when(pol == "negative", F.concat(aspect_sentence("negative", a1, "na"), F.lit(space),
                                                  one(vocab["overall_negative"], "on")))
                .when(pol == "mixed", F.concat(aspect_sentence("positive", a1, "ma"), F.lit(but),
                                               F.lower(aspect_sentence("negative", a2, "mb"))))
                .when(pol == "sarcasm", one(vocab["sarcasm"], "sa"))
                .otherwise(one(vocab["neutral"], "ne")))
        return F.regexp_replace(text, r"\{p\}", "item")

    # -- truth -----------------------------------------------------------------------------
    def identifier_truth(self, persons: DataFrame) -> DataFrame:
        p = F.col("pidx")
        cookies = persons.select("person_id", p, F.explode(F.sequence(F.lit(0), self.n_cookies(p) - 1)).alias("c")).select(
            F.lit("anonymous_id").alias("id_type"), self.cookie(p, F.col("c")).alias("value"), "person_id")
        devices = persons.select("person_id", p, F.explode(F.sequence(F.lit(0), self.n_devices(p) - 1)).alias("c")).select(
            F.lit("device_id").alias("id_type"), self.device(p, F.col("c")).alias("value"), "person_id")
        return cookies.unionByName(devices)

    def churn_truth(self, facts: DataFrame) -> DataFrame:
        """Persons with a completed order by the cutoff; churned = none in the next 90 days."""
        cutoff = self.cfg.epoch(self.cfg.cutoff) + DAY
        horizon = cutoff + CHURN_WINDOW_DAYS * DAY
        completed = facts.where(F.col("status") == "completed")
        return completed.groupBy("person_id").agg(
            F.max(F.when(F.col("order_epoch") < cutoff, 1).otherwise(0)).alias("eligible"),
            F.max(F.when((F.col("order_epoch") >= cutoff) & (F.col("order_epoch") < horizon), 1).otherwise(0)).alias("bought_after"),
        ).where("eligible = 1").select(
            "person_id", F.lit(self.cfg.cutoff.isoformat()).cast("date").alias("cutoff_date"),
            (F.col("bought_after") == 0).alias("churned"))
