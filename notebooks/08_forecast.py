# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: demand and customer-base forecasts
# MAGIC Which series were forecast (and why some were not), the backtest accuracy per model and level,
# MAGIC the next weeks per series with intervals, and the customer base week by week against its
# MAGIC backtest. Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/08_forecast.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")


def latest(table: str):
    df = lake.read(table)
    return df.where(F.col("as_of_date") == df.agg(F.max("as_of_date")).first()[0])


# COMMAND ----------

# MAGIC %md ## Series: pattern, status, chosen model

# COMMAND ----------

if not lake.exists("forecast_series"):
    print("no forecasts yet: run `memberlake forecast`")
else:
    series = latest("forecast_series")
    series.groupBy("measure", "status", "pattern").count().orderBy("measure", "status", "pattern").show()
    (series.select("measure", "series_id", "pattern", "status", "model", "mase", "baseline_mase", "reason")
     .orderBy("measure", "series_id").show(40, truncate=False))

# COMMAND ----------

# MAGIC %md ## Backtest accuracy: per model over the series, and above the series

# COMMAND ----------

if lake.exists("forecast_backtest"):
    backtest = latest("forecast_backtest")
    (backtest.where("level = 'series'").groupBy("measure", "model")
     .agg(F.count(F.lit(1)).alias("series"), F.sum(F.col("chosen").cast("int")).alias("chosen"),
          F.expr("percentile_approx(mase, 0.5)").alias("median_mase"), F.avg("coverage_80").alias("coverage_80"),
          F.avg("coverage_95").alias("coverage_95"))
     .orderBy("measure", F.desc("chosen")).show(truncate=False))
    backtest.where("level != 'series'").orderBy("measure", "level", "series_id", "model").show(truncate=False)

# COMMAND ----------

# MAGIC %md ## The next periods, total and per series

# COMMAND ----------

if lake.exists("demand_forecast"):
    fc = latest("demand_forecast")
    (fc.where("level = 'total'").select("measure", "period", "forecast", "lo_80", "hi_80", "lo_95", "hi_95")
     .orderBy("measure", "period").show(30))
    (fc.where("level = 'series'").groupBy("measure", "series_id", "model").agg(F.sum("forecast").alias("horizon_total"))
     .orderBy("measure", F.desc("horizon_total")).show(20, truncate=False))

# COMMAND ----------

# MAGIC %md ## Customer base: expected vs actual in the holdout, and the weeks ahead

# COMMAND ----------

if lake.exists("customer_base_forecast"):
    latest("customer_base_forecast").orderBy("kind", "week").show(60, truncate=False)
