"""Nightly analytics: daily/weekly/performance aggregates, indicators, backfill, schedule."""
