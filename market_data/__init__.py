"""Where quotes come from, and when the market is open: the outside sources'
clients (alpha_vantage: quotes, daily history and news; yahoo_finance: quotes)
with their parsing and one kind of refusal (refusal), the simulator that stands
in for them (simulator), and the NYSE calendar (market_hours). Shared by the
producer, the batch, the news job and the web app (Yahoo's ticker search); never imports any role's folder."""
