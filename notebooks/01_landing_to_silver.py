# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: landing -> bronze -> silver
# MAGIC Explore what ingest and clean produced: row counts, what was quarantined and why, data
# MAGIC quality per column, and the run log. Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your
# MAGIC catalog.schema) and locally: `python notebooks/01_landing_to_silver.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse
from memberlake.privacy.pseudonymise import masked
from memberlake.settings import PrivacySettings

# Databricks: set MEMBERLAKE_LAKEHOUSE (or this default) to your catalog.schema, e.g. "main.memberlake".
spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## Rows per layer

# COMMAND ----------

for entity in ["members", "orders", "order_items", "products", "events"]:
    counts = {layer: lake.read(f"{layer}_{entity}").count() if lake.exists(f"{layer}_{entity}") else None
              for layer in ("bronze", "silver")}
    print(f"{entity:<12} bronze {counts['bronze']}  silver {counts['silver']}")

# COMMAND ----------

# MAGIC %md ## Quarantine: what was rejected, and why

# COMMAND ----------

quarantine = lake.read("quarantine")
(quarantine.select("entity", "stage", F.explode("reasons").alias("reason"))
 .groupBy("entity", "stage", "reason").count().orderBy(F.desc("count")).show(50, truncate=False))
# raw records may hold PII: shown masked (j***@example.com)
masked(quarantine.select("entity", "reasons", "raw_record"), PrivacySettings().pii_columns).show(5, truncate=120)

# COMMAND ----------

# MAGIC %md ## Data quality of the latest clean run

# COMMAND ----------

dq = lake.read("dq_metrics")
latest = dq.where("job = 'clean'").agg(F.max("measured_at")).first()[0]
(dq.where((F.col("measured_at") == latest) & F.col("metric").isin("completeness", "validity", "key_uniqueness"))
 .groupBy("table").pivot("metric").agg(F.round(F.min("value"), 3)).orderBy("table").show(truncate=False))
(dq.where((F.col("measured_at") == latest) & (F.col("metric") == "flagged_rows"))
 .select("table", "column", "value").orderBy(F.desc("value")).show(truncate=False))

# COMMAND ----------

# MAGIC %md ## Run log

# COMMAND ----------

(lake.read("job_runs").orderBy(F.desc("started_at"))
 .select("job", "status", "started_at", "duration_s", "rows_written", "error").show(10, truncate=80))
