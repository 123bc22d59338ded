def test_configured_breakers_are_in_readiness_by_default(tmp_path) -> None:
    """With breakers configured and no breakers check declared, readiness watches them: an
    open breaker makes it warn, not fail."""
    from buttress.config import load_config

    path = tmp_path / "buttress.toml"
    path.write_text("[breakers.payments]\nconsecutive_failures = 1\n")
    config = load_config(path, environ={})
    config.registry.breaker("payments").trip()
    report = config.health.run_sync("readiness", fresh=True)
    assert report.checks["circuit_breakers"].status.value == "warn"
    assert report.status.value == "warn"
    assert report.http_status == 200
