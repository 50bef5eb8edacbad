"""Where quotes and market news come from: outside APIs (Alpha Vantage) and
their parsing. Shared by the producer, the backfill and the news job; never
imports any role's folder."""
