"""Which Host headers name the HTTP listener (the JSON API's and the dashboard's DNS-rebinding check)."""

from __future__ import annotations

from respq.http.app import allowed_hosts


def test_a_loopback_bind_answers_to_every_loopback_name_with_the_port() -> None:
    for bind in ("127.0.0.1", "::1", "localhost"):
        assert allowed_hosts(bind, 9121) == {"127.0.0.1:9121", "[::1]:9121", "localhost:9121"}
    assert "localhost" in allowed_hosts("127.0.0.1", 80)  # type: ignore[operator]  # port 80 may be left out


def test_another_bind_answers_to_its_own_address_only_and_a_wildcard_to_any() -> None:
    assert allowed_hosts("10.0.0.5", 8080) == {"10.0.0.5:8080"}
    assert allowed_hosts("fd00::5", 8080) == {"[fd00::5]:8080"}
    assert allowed_hosts("0.0.0.0", 8080) is None
    assert allowed_hosts("::", 8080) is None
