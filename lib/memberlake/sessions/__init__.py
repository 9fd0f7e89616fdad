"""Clickstream sessions, behaviour metrics and attribution."""
