"""Customer value: RFM snapshots and segments, member profiles and tags, lifetime value."""
