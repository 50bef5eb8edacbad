"""Users' own rules (pure): their threshold's bands, price levels with re-arming, replays, the index."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from streaming.alert_rules import PRICE_CHANGE, VOLUME_SPIKE, Alert, BandState, UserRules, step_band, user_wants
from streaming.user_alert_rules import (
    ABOVE,
    BELOW,
    ONCE,
    REARM,
    LevelRule,
    LevelState,
    RuleIndex,
    UserThresholds,
    level_alert,
    rearm_price,
    step_level,
    user_price_alert,
)

T0 = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)
DAY = date(2026, 1, 13)


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=15 * i)


def test_a_users_8_percent_threshold_fires_once_at_8_5_not_at_the_systems_bands() -> None:
    state, fired = BandState(), []
    for i, move in enumerate([5.3, 7.0, 8.5, 9.0, 8.7, 9.5]):
        state, band = step_band(state, move, at(i), DAY, 8.0, 1.0)
        if band is not None:
            fired.append((move, band))
    assert fired == [(8.5, 1)]
    # 16 % is the user's second band; back below 7 % re-arms; a new market day re-arms too.
    state, band = step_band(state, 16.5, at(10), DAY, 8.0, 1.0)
    assert band == 2
    state, band = step_band(state, 6.5, at(11), DAY, 8.0, 1.0)
    state, band = step_band(state, 8.2, at(12), DAY, 8.0, 1.0)
    assert band == 1
    _, band = step_band(state, 8.3, at(13) + timedelta(days=1), DAY + timedelta(days=1), 8.0, 1.0)
    assert band == 1


def test_a_replayed_quote_fires_only_if_it_is_the_one_that_fired() -> None:
    state, _ = step_band(BandState(), 8.5, at(0), DAY, 8.0, 1.0)
    state, _ = step_band(state, 9.0, at(1), DAY, 8.0, 1.0)
    assert step_band(state, 8.5, at(0), DAY, 8.0, 1.0) == (state, 1)  # the same alert key: stored once
    assert step_band(state, 9.0, at(1), DAY, 8.0, 1.0) == (state, None)


def run_level(rule: LevelRule, prices: list[float], margin: float = 1.0) -> tuple[LevelRule, list[int]]:
    fired = []
    for i, price in enumerate(prices):
        state, fires = step_level(rule, price, at(i), margin)
        rule = LevelRule(rule.rule_id, rule.user_id, rule.symbol, rule.direction, rule.level, rule.mode, state)
        if fires:
            fired.append(i)
    return rule, fired


def test_above_a_level_crossed_held_back_and_again_with_a_re_arming_rule() -> None:
    rule = LevelRule("r1", "u1", "AAPL", ABOVE, 300.0, REARM)
    # crossed (1), held (2-3), back but not by 1 % (4: 298), back by 1 % (5: 296.9), crossed again (6)
    _, fired = run_level(rule, [299.0, 300.5, 305.0, 301.0, 298.0, 296.9, 300.0, 310.0])
    assert fired == [1, 6]
    # Hovering at the level without going back by the margin: one alert.
    _, fired = run_level(rule, [299.0, 300.1, 299.5, 300.2, 297.5, 300.3])
    assert fired == [1]


def test_below_a_level_one_shot_fires_once_ever() -> None:
    rule = LevelRule("r2", "u1", "AAPL", BELOW, 250.0, ONCE)
    final, fired = run_level(rule, [260.0, 249.0, 270.0, 240.0])
    assert fired == [1] and not final.state.armed and final.state.fired_price == 249.0
    assert rearm_price(BELOW, 250.0, 2.0) == 255.0 and rearm_price(ABOVE, 300.0, 1.0) == 297.0


def test_a_level_replay_changes_nothing_and_only_the_firing_quote_fires_again() -> None:
    rule = LevelRule("r3", "u1", "AAPL", ABOVE, 100.0, REARM)
    fired_rule, fired = run_level(rule, [99.0, 101.0, 102.0])
    assert fired == [1]
    assert step_level(fired_rule, 101.0, at(1), 1.0) == (fired_rule.state, True)
    assert step_level(fired_rule, 99.0, at(0), 1.0) == (fired_rule.state, False)
    # Re-armed, then a redelivered crossing quote: it is older than the re-arm, so nothing.
    rearmed = LevelRule("r3", "u1", "AAPL", ABOVE, 100.0, REARM,
                        LevelState(armed=True, as_of=at(5), fired_at=at(1), fired_price=101.0))
    assert step_level(rearmed, 101.0, at(1), 1.0) == (rearmed.state, True)  # same key as stored: no second alert
    assert step_level(rearmed, 101.0, at(2), 1.0) == (rearmed.state, False)


def test_alert_keys_are_per_user_rule_and_quote() -> None:
    q = {"symbol": "AAPL", "timestamp": at(0), "price": 301.0, "change_percent": 8.5, "source": "simulated"}
    rule = LevelRule("r1", "u1", "AAPL", ABOVE, 300.0, REARM)
    assert level_alert(rule, q).key == "u1|r1|AAPL|2026-01-13T15:30:00.000+00:00"
    a = user_price_alert("u1", q, 1, 8.0)
    assert a.key == "u1|price_change|AAPL|2026-01-13T15:30:00.000+00:00" and "8%" in a.message
    assert level_alert(rule, q).key != level_alert(LevelRule("r1", "u2", "AAPL", ABOVE, 300.0, REARM), q).key


def test_the_index_gives_a_symbol_only_its_rules() -> None:
    index = RuleIndex(
        [UserThresholds("a", ("AAPL",), 8.0, None), UserThresholds("b", (), None, 3.0),
         UserThresholds("c", ("MSFT",), None, None)],
        [LevelRule("r1", "a", "AAPL", ABOVE, 300.0, REARM), LevelRule("r2", "b", "MSFT", BELOW, 200.0, ONCE)])
    assert [t.user_id for t in index.thresholds("AAPL")] == ["a", "b"]
    assert [t.user_id for t in index.thresholds("MSFT")] == ["b"]  # c has no rule of their own
    assert [r.rule_id for r in index.levels("AAPL")] == ["r1"] and index.levels("GOOG") == []
    index.update_level(index.levels("AAPL")[0], LevelState(armed=False, as_of=at(1), fired_at=at(1)))
    assert not index.levels("AAPL")[0].state.armed


def test_a_user_with_an_own_threshold_gets_their_own_alerts_not_the_systems_of_that_kind() -> None:
    rules = UserRules("u", "u@example.test", True, (), 8.0, 2.0, 20, None, own_price=True)
    move = Alert("AAPL", PRICE_CHANGE, 10.2, 5.0, 1.0, at(0), "simulated", "m", band=2)
    spike = Alert("AAPL", VOLUME_SPIKE, 5000.0, 2000.0, 1.0, at(0), "simulated", "m", baseline=1000.0)
    assert not user_wants(rules, move) and user_wants(rules, spike)
