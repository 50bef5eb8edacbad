"""An in-memory Alpha Vantage call budget for tests that need no MongoDB (the product
spends database/mongo/api_budget.MongoCallBudget, shared by every process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LocalCallBudget:
    """Per-minute and per-day call budget for one process (thread-safe)."""

    def __init__(self, per_minute: int, per_day: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.per_day = per_day
        self.clock = clock
        self._lock = threading.Lock()
        self._minute: tuple[int, int] = (-1, 0)  # (minute number, calls)
        self._day: tuple[int, int] = (-1, 0)  # (day number, calls)

    def try_spend(self) -> bool:
        now = self.clock()
        minute, day = int(now // 60), int(now // 86400)
        with self._lock:
            m_calls = self._minute[1] if self._minute[0] == minute else 0
            d_calls = self._day[1] if self._day[0] == day else 0
            if m_calls >= self.per_minute or d_calls >= self.per_day:
                return False
            self._minute = (minute, m_calls + 1)
            self._day = (day, d_calls + 1)
            return True
