"""Market-basket analysis: baskets, FP-Growth itemsets, rules and recommendations."""
