# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: sessions, channels and attribution
# MAGIC Sessionized clickstream: volume and conversion by channel, funnel, top paths, and how the
# MAGIC attribution models split revenue across channels.
# MAGIC Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/03_sessions.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## Sessions by channel

# COMMAND ----------

if not lake.exists("sessions"):
    print("no sessions: the landing zone has no clickstream")
else:
    (lake.read("sessions").groupBy("channel")
     .agg(F.count(F.lit(1)).alias("sessions"), F.round(F.avg(F.col("converted").cast("double")), 4).alias("conversion"),
          F.round(F.avg("duration_s"), 1).alias("avg_duration_s"), F.round(F.sum("revenue"), 2).alias("revenue"))
     .orderBy(F.desc("sessions")).show())

# COMMAND ----------

# MAGIC %md ## Funnel and top paths

# COMMAND ----------

for table in ("session_funnel", "top_paths"):
    if lake.exists(table):
        lake.read(table).show(20, truncate=60)

# COMMAND ----------

# MAGIC %md ## Attribution: share of revenue per channel and model

# COMMAND ----------

if lake.exists("attribution"):
    att = lake.read("attribution")
    total = att.groupBy("model").agg(F.sum("revenue").alias("total"))
    (att.join(total, "model").groupBy("channel").pivot("model")
     .agg(F.round(F.sum(F.col("revenue") / F.col("total")), 3)).orderBy("channel").show(truncate=False))
