"""Circuit breakers: windows, the state machine, and the ``CircuitBreaker`` policy."""

from buttress.breaker._breaker import CircuitBreaker
from buttress.breaker._state import BreakerOptions, BreakerSnapshot, BreakerState

__all__ = ["BreakerOptions", "BreakerSnapshot", "BreakerState", "CircuitBreaker"]
