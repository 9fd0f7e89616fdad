# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: association rules and recommendations
# MAGIC FP-Growth rules for the whole population and per segment, bought-together pairs, and the
# MAGIC recommendations a person gets (never an item they already bought).
# MAGIC Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/05_basket.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## Top rules by lift

# COMMAND ----------

if not lake.exists("basket_rules"):
    print("no rules: the landing zone has no order lines")
else:
    rules = lake.read("basket_rules")
    (rules.where(F.col("segment_by") == "all").orderBy(F.desc("lift"))
     .select("antecedent", "consequent", "support", "confidence", "lift").show(15, truncate=False))
    rules.groupBy("segment_by", "segment").count().orderBy("segment_by", "segment").show(truncate=False)

# COMMAND ----------

# MAGIC %md ## Bought together and recommendations

# COMMAND ----------

for table in ("basket_bought_together", "basket_recommendations"):
    if lake.exists(table):
        lake.read(table).orderBy("rank").show(10, truncate=False)
