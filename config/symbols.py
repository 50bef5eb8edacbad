"""Reference data about the monitored symbols: seed prices and the per-symbol figures the
simulator is calibrated on (market_data/simulator.py), and the check of a ticker a user types
(`ticker_problem`). Company names are not here: they come from the quote source (Yahoo's quote
and search answers) and are kept in the symbol registry (database/mongo/symbols.py)."""

from config.settings import SYMBOL_RE

# Plausible prices (early 2026) where simulation starts when no real price is
# known yet: the live simulator and the simulated backfill both anchor here, so
# history and live quotes meet.
SEED_PRICES: dict[str, float] = {
    "AAPL": 260.0, "GOOGL": 320.0, "MSFT": 480.0, "AMZN": 235.0,
    "TSLA": 440.0, "META": 650.0, "NVDA": 185.0,
}
# Typical shares traded per day (2025-26 averages, rounded): the simulated ticks of
# a session add up to about this, spread over a U-shaped intraday profile.
DAILY_VOLUMES: dict[str, float] = {
    "AAPL": 50e6, "GOOGL": 30e6, "MSFT": 20e6, "AMZN": 40e6,
    "TSLA": 90e6, "META": 12e6, "NVDA": 180e6,
}
# Annualised volatility of daily returns (realised, 2024-26, rounded): mega caps
# 20-30 %, the momentum names up to ~40 %. Applies to the live ticks and the simulated
# backfill alike.
ANNUAL_VOLATILITY: dict[str, float] = {
    "AAPL": 0.24, "GOOGL": 0.28, "MSFT": 0.22, "AMZN": 0.28,
    "TSLA": 0.38, "META": 0.28, "NVDA": 0.34,
}
DEFAULT_VOLATILITY = 0.30
DEFAULT_DAILY_VOLUME = 10e6


def seed_price(symbol: str) -> float:
    # Unknown symbols get a stable price derived from the ticker, 20..520.
    return SEED_PRICES.get(symbol, 20.0 + (sum(map(ord, symbol)) * 37) % 500)


def annual_volatility(symbol: str) -> float:
    return ANNUAL_VOLATILITY.get(symbol, DEFAULT_VOLATILITY)


def daily_volume(symbol: str) -> float:
    return DAILY_VOLUMES.get(symbol, DEFAULT_DAILY_VOLUME)


# What a user may type as a ticker: at most this many characters before any check
# (a 200-character paste is refused as too long, not as "not a ticker").
MAX_TICKER_CHARS = 10


def ticker_problem(raw: object) -> str | None:
    """Why `raw` is not a well-formed ticker (a sentence for the form), or None. Pure: it says
    nothing of whether any market lists it. Lower case is accepted (upper-cased by `normal_ticker`)."""
    if not isinstance(raw, str) or not raw:
        return "Enter a ticker, e.g. IBM."
    if len(raw) > MAX_TICKER_CHARS:
        return f"A ticker has at most {MAX_TICKER_CHARS} characters."
    if any(ch.isspace() for ch in raw):
        return "A ticker has no spaces."
    if ".." in raw or "/" in raw or "\\" in raw:
        return "A ticker has no path characters ('..', '/', '\\')."
    if not SYMBOL_RE.fullmatch(raw.upper()):
        return "A ticker starts with a letter and has only letters, digits, '.' and '-'."
    return None


def normal_ticker(raw: str) -> str:
    """The stored form of a well-formed ticker (see `ticker_problem`)."""
    return raw.upper()
