"""Reference data about the monitored symbols (names for news relevance, seed prices)."""

COMPANY_NAMES: dict[str, str] = {
    "AAPL": "Apple",
    "GOOGL": "Alphabet",
    "MSFT": "Microsoft",
    "AMZN": "Amazon",
    "TSLA": "Tesla",
    "META": "Meta Platforms",
    "NVDA": "Nvidia",
}

# Plausible prices (early 2026) where simulation starts when no real price is
# known yet: the live simulator and the simulated backfill both anchor here, so
# history and live quotes meet.
SEED_PRICES: dict[str, float] = {
    "AAPL": 260.0, "GOOGL": 320.0, "MSFT": 480.0, "AMZN": 235.0,
    "TSLA": 440.0, "META": 650.0, "NVDA": 185.0,
}
# Typical shares traded per day, for simulated intraday volume.
DAILY_VOLUMES: dict[str, float] = {
    "AAPL": 50e6, "GOOGL": 30e6, "MSFT": 20e6, "AMZN": 40e6,
    "TSLA": 90e6, "META": 12e6, "NVDA": 180e6,
}


def company_name(symbol: str) -> str:
    return COMPANY_NAMES.get(symbol, symbol)


def seed_price(symbol: str) -> float:
    # Unknown symbols get a stable price derived from the ticker, 20..520.
    return SEED_PRICES.get(symbol, 20.0 + (sum(map(ord, symbol)) * 37) % 500)
