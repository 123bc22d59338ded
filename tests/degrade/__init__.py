"""Tests of graceful degradation: levels, rules, fallbacks, partial failure."""
