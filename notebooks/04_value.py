# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: RFM, member profiles and lifetime value
# MAGIC Segment sizes and migration, the profile tags marketing selects audiences with, and the
# MAGIC customer lifetime value model's parameters and holdout check.
# MAGIC Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/04_value.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## RFM segments at the latest as-of date

# COMMAND ----------

rfm = lake.read("rfm")
latest = rfm.agg(F.max("as_of_date")).first()[0]
(rfm.where(F.col("as_of_date") == latest).groupBy("segment")
 .agg(F.count(F.lit(1)).alias("persons"), F.round(F.avg("monetary"), 2).alias("avg_monetary"))
 .orderBy(F.desc("persons")).show(truncate=False))

# COMMAND ----------

# MAGIC %md ## Segment migration

# COMMAND ----------

if lake.exists("rfm_segment_migration"):
    lake.read("rfm_segment_migration").orderBy(F.desc("persons")).show(15, truncate=False)

# COMMAND ----------

# MAGIC %md ## Profile tags

# COMMAND ----------

if lake.exists("tag_coverage"):
    lake.read("tag_coverage").orderBy(F.desc("share")).show(truncate=False)
lake.read("member_profile").select("person_id", "segment", "lifecycle_stage", "value_tier", "tags").show(5, truncate=False)

# COMMAND ----------

# MAGIC %md ## Customer lifetime value

# COMMAND ----------

if lake.exists("clv_parameters"):
    lake.read("clv_parameters").show(truncate=False)
if lake.exists("clv_holdout"):
    lake.read("clv_holdout").show(truncate=False)
