# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: identity graph and persons
# MAGIC How many persons the identity graph found, how records were merged, the largest clusters
# MAGIC and the edges the guards refused (shared e-mails, placeholder values, busy devices).
# MAGIC Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/02_identity.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## Persons and identifiers

# COMMAND ----------

graph = lake.read("identity_graph")
graph.groupBy("id_type").agg(F.count(F.lit(1)).alias("identifiers"), F.countDistinct("person_id").alias("persons")) \
    .orderBy("id_type").show()
print("persons:", graph.select("person_id").distinct().count())

# COMMAND ----------

# MAGIC %md ## Member records per person

# COMMAND ----------

(graph.groupBy("person_id").agg(F.count(F.when(F.col("id_type") == "member", 1)).alias("member_records"))
 .groupBy("member_records").count().orderBy("member_records").show())

# COMMAND ----------

# MAGIC %md ## Largest clusters (check these first when tuning the guards)

# COMMAND ----------

(graph.groupBy("person_id").agg(F.max("component_size").alias("size"),
                                F.collect_set("id_type").alias("types"))
 .orderBy(F.desc("size")).show(10, truncate=False))

# COMMAND ----------

# MAGIC %md ## Edges the guards dropped, by reason

# COMMAND ----------

if lake.exists("identity_audit"):
    lake.read("identity_audit").groupBy("origin", "reason").count().orderBy(F.desc("count")).show(20, truncate=False)

# COMMAND ----------

# MAGIC %md ## Golden records (e-mails and phones are keyed hashes)

# COMMAND ----------

lake.read("person").select("person_id", "gender", "birth_date", "city", "country", "member_records", "sources") \
    .show(5, truncate=False)
