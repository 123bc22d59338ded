"""Tests of buttress.config."""
