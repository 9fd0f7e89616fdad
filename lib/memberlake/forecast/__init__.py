"""Forecasting: demand per series with backtested model choice, and the customer base from BTYD."""
