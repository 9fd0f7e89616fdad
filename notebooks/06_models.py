# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: segmentation and churn models
# MAGIC Behavioural clusters with their personas, the churn model's test metrics against the
# MAGIC recency-only baseline, its calibration, and the current risk deciles.
# MAGIC Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/06_models.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## Clusters

# COMMAND ----------

if lake.exists("segment_profile"):
    prof = lake.read("segment_profile")
    latest = prof.agg(F.max("as_of_date")).first()[0]
    (prof.where(F.col("as_of_date") == latest).groupBy("cluster", "persona", "persons").pivot("feature")
     .agg(F.round(F.first("z"), 2)).orderBy("cluster").show(truncate=False))

# COMMAND ----------

# MAGIC %md ## Churn: test metrics and calibration

# COMMAND ----------

if lake.exists("churn_metrics"):
    lake.read("churn_metrics").where("split = 'test'").orderBy("as_of_date", "model", "metric").show(30, truncate=False)
if lake.exists("churn_calibration"):
    lake.read("churn_calibration").orderBy("as_of_date", "bin").show(20)

# COMMAND ----------

# MAGIC %md ## Risk deciles of the latest scoring

# COMMAND ----------

if lake.exists("churn_scores"):
    scores = lake.read("churn_scores")
    latest = scores.agg(F.max("as_of_date")).first()[0]
    (scores.where(F.col("as_of_date") == latest).groupBy("decile")
     .agg(F.count(F.lit(1)).alias("persons"), F.round(F.avg("probability"), 3).alias("mean_probability"))
     .orderBy("decile").show())
