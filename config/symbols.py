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

# Plausible starting prices for simulation when no real price is known yet.
SEED_PRICES: dict[str, float] = {
    "AAPL": 260.0,
    "GOOGL": 190.0,
    "MSFT": 430.0,
    "AMZN": 220.0,
    "TSLA": 400.0,
    "META": 610.0,
    "NVDA": 140.0,
}


def company_name(symbol: str) -> str:
    return COMPANY_NAMES.get(symbol, symbol)


def seed_price(symbol: str) -> float:
    # Unknown symbols get a stable price derived from the ticker, 20..520.
    return SEED_PRICES.get(symbol, 20.0 + (sum(map(ord, symbol)) * 37) % 500)
