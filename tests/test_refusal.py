"""market_data/refusal.py: the refusal kinds and how far each reaches (pure)."""

from __future__ import annotations

import pytest

from market_data.alpha_vantage import AlphaVantageRefused
from market_data.refusal import Ends, Refusal, SourceRefused
from market_data.yahoo_finance import BACKOFF_KINDS, YahooRefused


def test_the_kinds_that_end_the_tick_are_the_budget_and_rate_limit_ones() -> None:
    assert {k for k in Refusal if k.ends_tick} == {
        Refusal.NO_KEY, Refusal.BUDGET_EXHAUSTED, Refusal.RATE_LIMIT_NOTE, Refusal.RATE_LIMIT_INFORMATION}


def test_the_kinds_that_end_the_day_are_no_key_and_the_daily_cap() -> None:
    assert {k for k in Refusal if k.ends_day} == {Refusal.NO_KEY, Refusal.RATE_LIMIT_INFORMATION}
    assert all(k.ends_tick for k in Refusal if k.ends_day), "a refusal that ends the day ends the tick too"


@pytest.mark.parametrize("kind", [Refusal.TIMEOUT, Refusal.HTTP_ERROR, Refusal.BAD_PAYLOAD, Refusal.EMPTY_QUOTE,
                                  Refusal.UNKNOWN_SYMBOL, Refusal.RATE_LIMITED, Refusal.BACKING_OFF])
def test_other_kinds_end_only_the_call(kind: Refusal) -> None:
    assert kind.ends is Ends.CALL and not kind.ends_tick and not kind.ends_day


def test_kinds_read_as_their_text() -> None:
    assert Refusal.NO_KEY == "no_key" and f"{Refusal.BUDGET_EXHAUSTED}" == "budget_exhausted"
    assert Refusal("rate_limit_note") is Refusal.RATE_LIMIT_NOTE
    with pytest.raises(ValueError):
        Refusal("not_a_kind")


@pytest.mark.parametrize("cls", [AlphaVantageRefused, YahooRefused])
def test_each_source_refusal_shares_the_base(cls: type[SourceRefused]) -> None:
    exc = cls("timeout", "no answer in 5s")
    assert isinstance(exc, SourceRefused) and exc.kind is Refusal.TIMEOUT and exc.detail == "no answer in 5s"
    assert str(exc) == "timeout: no answer in 5s" and str(cls(Refusal.NO_KEY)) == "no_key"


def test_yahoo_backs_off_only_after_refusals_that_end_the_call() -> None:
    # Backing off is Yahoo's own answer to being throttled; none of these ends a tick.
    assert BACKOFF_KINDS and not any(k.ends_tick for k in BACKOFF_KINDS)
