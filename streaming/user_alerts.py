"""Users' own rules inside the alerts service (the rules themselves: streaming/user_alert_rules.py).

Every quote runs the rules of its symbol only (RuleIndex). The rules are read from
MongoDB at start and again whenever the rules' version moves (the web app bumps it
on each change; the service looks every USER_RULES_REREAD_SECONDS). Each alert is
stored in user_alerts (idempotent on its key) before the state that remembers it, so a
crash in between repeats the same key, never a second alert; a level rule's state is
stored with a conditional update. Deliveries go through streaming/alert_delivery.py
(planned once per alert and recipient, the user's daily cap, queued: never sent here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.clock import utc_now
from common.quote import Quote
from config import Settings
from database.mongo import user_rules as rules_db
from streaming.alert_delivery import Deliveries
from streaming.alert_rules import (
    BandState,
    Baseline,
    Decision,
    cooldown_decision,
    market_day,
    state_from_doc,
    state_to_doc,
    step_band,
    volume_alert,
)
from streaming.user_alert_rules import (
    USER_VOLUME_SPIKE,
    LevelRule,
    LevelState,
    RuleIndex,
    UserAlert,
    UserThresholds,
    level_alert,
    step_level,
    user_price_alert,
    user_volume_alert,
)


def level_from_doc(doc: dict[str, Any]) -> LevelRule:
    return LevelRule(str(doc["_id"]), doc["user_id"], doc["symbol"], doc["direction"], float(doc["level"]),
                     doc["mode"], LevelState(armed=bool(doc.get("armed", True)), as_of=doc.get("as_of"),
                                             fired_at=doc.get("fired_at"), fired_price=doc.get("fired_price")))


def thresholds_from_doc(doc: dict[str, Any], settings: Settings) -> UserThresholds:
    """Only a threshold stricter than the system's is a rule of the user's own: at the
    system's, the system's alerts already reach them."""
    def own(value: Any, system: float) -> float | None:
        return float(value) if isinstance(value, int | float) and float(value) > system else None

    return UserThresholds(str(doc["_id"]), tuple(doc.get("watchlist") or ()),
                          own(doc.get("alert_price_threshold"), settings.price_change_threshold),
                          own(doc.get("alert_volume_multiplier"), settings.volume_threshold_multiplier))


class UserAlerts:
    def __init__(self, settings: Settings, db: Database, deliveries: Deliveries, logger: Any,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.db = db
        self.deliveries = deliveries
        self.log = logger
        self.clock = clock
        self.index = RuleIndex()
        self._version: int | None = None
        self._checked = -float("inf")
        self._bands: dict[str, dict[str, BandState]] = {}  # symbol -> user -> state
        self._last_volume: dict[tuple[str, str], datetime | None] = {}
        self.cooldown = timedelta(seconds=settings.alert_cooldown_seconds)
        self.raised = 0

    # ------------------------------------------------------------------ the rules
    def refresh(self) -> None:
        """Re-read the rules when their version moved (checked every USER_RULES_REREAD_SECONDS);
        MongoDB unreachable: the rules read last stay."""
        now = time.monotonic()
        if now - self._checked < self.settings.user_rules_reread_seconds:
            return
        self._checked = now
        try:
            version = rules_db.rules_version(self.db)
            if version == self._version:
                return
            thresholds = [thresholds_from_doc(d, self.settings) for d in rules_db.threshold_users(self.db)]
            levels = [level_from_doc(d) for d in rules_db.all_level_rules(self.db)]
        except PyMongoError as exc:
            self.log.warning("users' alert rules not re-read (the last ones stay): %s", exc)
            return
        self.index = RuleIndex(thresholds, levels)
        self._version = version
        self.log.info("users' alert rules: %d in use (version %d)", self.index.size(), version)

    def _band(self, symbol: str, user_id: str) -> BandState:
        if symbol not in self._bands:  # first quote of the symbol since start: every user's stored state
            self._bands[symbol] = {u: state_from_doc(d) for u, d in rules_db.load_band_states(self.db, symbol).items()}
        return self._bands[symbol].get(user_id, BandState())

    # ------------------------------------------------------------------ one quote
    def check(self, quote: Quote, baseline: Baseline | None) -> None:
        """Every user rule on the quote's symbol (raises on a storage error: the caller retries,
        and a retry repeats nothing that was stored). The rules are evaluated first; then the
        alerts are stored (and their deliveries planned), then the states that remember them,
        each in one round trip however many rules fired."""
        symbol, ts = quote["symbol"], quote["timestamp"]
        day = market_day(ts, self.settings.tz)
        fired: list[UserAlert] = []
        bands: list[tuple[str, BandState]] = []
        levels: list[tuple[LevelRule, LevelState]] = []
        for t in self.index.thresholds(symbol):
            if t.price_threshold is not None:
                before = self._band(symbol, t.user_id)
                after, band = step_band(before, quote["change_percent"], ts, day, t.price_threshold,
                                        min(self.settings.price_change_hysteresis, t.price_threshold / 2))
                if band is not None:
                    fired.append(user_price_alert(t.user_id, quote, band, t.price_threshold))
                if after != before:
                    bands.append((t.user_id, after))
            if t.volume_multiplier is not None and (alert := self._volume(t, quote, baseline)) is not None:
                fired.append(alert)
        for rule in self.index.levels(symbol):
            state, fires = step_level(rule, quote["price"], ts, self.settings.user_level_rearm_percent)
            if fires:
                fired.append(level_alert(rule, quote))
            if state != rule.state:
                levels.append((rule, state))
        self.process(fired)
        if bands:
            rules_db.save_band_states(self.db, symbol, [(user, state_to_doc(state)) for user, state in bands])
            self._bands[symbol].update(bands)
        if levels:
            stored = rules_db.save_level_states(self.db, [(rule.rule_id, rule.state.as_of, {
                "armed": state.armed, "as_of": state.as_of, "fired_at": state.fired_at,
                "fired_price": state.fired_price}) for rule, state in levels])
            if stored < len(levels):
                self.log.info("%d level rule(s) of %s changed or deleted meanwhile: their state is not stored",
                              len(levels) - stored, symbol)
                self._checked = -float("inf")  # read the rules again at the next quote
            for rule, state in levels:
                self.index.update_level(rule, state)
        for alert in fired:
            if alert.rule == USER_VOLUME_SPIKE:
                last = self._last_volume.get((alert.user_id, symbol))
                if last is None or ts > last:
                    self._last_volume[(alert.user_id, symbol)] = ts

    def _volume(self, t: UserThresholds, quote: Quote, baseline: Baseline | None) -> UserAlert | None:
        """The user's volume spike (their multiplier, the system's baseline, the cooldown per user)."""
        assert t.volume_multiplier is not None
        system = volume_alert(quote, baseline, t.volume_multiplier)
        if system is None:
            return None
        key = (t.user_id, quote["symbol"])
        if key not in self._last_volume:
            self._last_volume[key] = rules_db.last_user_alert_time(self.db, t.user_id, quote["symbol"],
                                                                   USER_VOLUME_SPIKE)
        if cooldown_decision(quote["timestamp"], self._last_volume[key], self.cooldown) is Decision.COOLDOWN:
            return None
        return user_volume_alert(t.user_id, system, t.volume_multiplier)

    # ------------------------------------------------------------------ the alerts
    def process(self, alerts: list[UserAlert]) -> None:
        """Store the alerts (once each), then plan and queue the deliveries of those not planned yet."""
        if not alerts:
            return
        new, waiting = rules_db.store_user_alerts(self.db, [a.as_record() for a in alerts], self.clock())
        for alert in alerts:
            if alert.key in new:
                self.raised += 1
                self.log.warning("USER ALERT %s for %s: %s [%s]", alert.rule, alert.user_id, alert.message,
                                 alert.key)
            if alert.key in waiting:
                self.deliveries.deliver_user_alert(alert)
        rules_db.mark_user_alerts_delivered(self.db, [a.key for a in alerts if a.key in waiting])
