"""Tests of the buttress command line."""
