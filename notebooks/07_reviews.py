# Databricks notebook source
# MAGIC %md
# MAGIC # memberlake: voice of the member and loyalty
# MAGIC Review sentiment per language and method, the most negative aspects per category, the
# MAGIC sentiment trend per product, persons whose sentiment is falling, and the loyalty tiers.
# MAGIC Runs on Databricks (set `MEMBERLAKE_LAKEHOUSE` to your catalog.schema) and locally:
# MAGIC `python notebooks/07_reviews.py` after `make demo`.

# COMMAND ----------

from pyspark.sql import functions as F

from memberlake.ops.notebook import open_lakehouse

spark, lake = open_lakehouse("data/lakehouse")

# COMMAND ----------

# MAGIC %md ## Held-out comparison of lexicon, model and blend (against star ratings)

# COMMAND ----------

if not lake.exists("review_sentiment"):
    print("no reviews: the landing zone has no reviews entity")
else:
    scored = lake.read("review_sentiment")
    scored.groupBy("language", "method", "label").count().orderBy("language", "method", "label").show(30)
    if lake.exists("sentiment_metrics"):
        (lake.read("sentiment_metrics").groupBy("as_of_date", "language", "method")
         .pivot("metric").agg(F.first("value")).orderBy("as_of_date", "language", "method").show(truncate=False))

# COMMAND ----------

# MAGIC %md ## Most negative aspects per category, and falling sentiment

# COMMAND ----------

if lake.exists("aspect_sentiment"):
    (lake.read("aspect_sentiment").groupBy("category", "aspect")
     .agg(F.sum("reviews").alias("mentions"), F.avg("negative_share").alias("negative_share"))
     .where("mentions >= 5").orderBy(F.desc("negative_share")).show(15, truncate=False))
if lake.exists("person_sentiment"):
    people = lake.read("person_sentiment")
    last = people.agg(F.max("as_of_date")).first()[0]
    (people.where((F.col("as_of_date") == last) & F.col("trend").isNotNull()).orderBy("trend")
     .select("person_id", "reviews", "mean_score", "recent_mean", "previous_mean", "trend").show(10, truncate=False))

# COMMAND ----------

# MAGIC %md ## Loyalty tiers

# COMMAND ----------

if lake.exists("loyalty"):
    loyal = lake.read("loyalty")
    last = loyal.agg(F.max("as_of_date")).first()[0]
    (loyal.where(F.col("as_of_date") == last).groupBy("loyalty_tier")
     .agg(F.count(F.lit(1)).alias("persons"), F.avg("loyalty_index").alias("index"),
          *[F.avg(f"{c}_component").alias(c) for c in ("repeat", "value", "engagement", "breadth", "sentiment")])
     .orderBy(F.desc("index")).show(truncate=False))
