"""Who may call the API: CLARIFY_API_KEYS parsing, bearer checks, and the loopback rule without keys."""

from __future__ import annotations

import hashlib

import pytest

from api.errors import ApiError
from api.keys import ApiKeys, parse_api_keys
from clarify.settings import Settings


def refusal(keys: ApiKeys, header: str | None) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        keys.authenticate(header)
    return caught.value.status, caught.value.code


def test_named_and_bare_keys_parse_and_bare_keys_get_a_stable_name_that_is_not_the_key():
    pairs = parse_api_keys(" shop:shop-secret-1 , 0123456789abcdef ")
    assert pairs[0] == ("shop", "shop-secret-1")
    name, key = pairs[1]
    assert key == "0123456789abcdef" and name == "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    assert key not in name
    assert parse_api_keys(None) == [] and parse_api_keys("  ") == []


@pytest.mark.parametrize("spec", ["shop:", ":secret-secret", "shop:short", "a:secret one", "a:k-12345678,a:k-87654321",
                                  "a:k-12345678,b:k-12345678", "shop:k-12345678,,"])
def test_bad_key_lists_are_refused_with_a_clear_message(spec):
    with pytest.raises(ValueError, match="CLARIFY_API_KEYS"):
        parse_api_keys(spec)


def test_the_settings_field_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CLARIFY_API_KEYS", "shop:shop-secret-1")
    keys = ApiKeys.from_settings(Settings(), loopback=False)
    assert keys.configured == 1 and keys.authenticate("Bearer shop-secret-1").name == "shop"


def test_with_keys_a_bearer_key_names_its_client_and_anything_else_is_401():
    keys = ApiKeys(parse_api_keys("alice:alice-key-1,bob:bob-key-22"), loopback=True)
    assert keys.authenticate("Bearer alice-key-1").name == "alice"
    assert keys.authenticate("bearer   bob-key-22 ").name == "bob"
    assert refusal(keys, None) == (401, "missing_api_key")
    assert refusal(keys, "Bearer ") == (401, "missing_api_key")
    assert refusal(keys, "Basic YWxpY2U6cHc=") == (401, "missing_api_key")
    assert refusal(keys, "Bearer alice-key-2") == (401, "invalid_api_key")
    assert refusal(keys, "Bearer alice") == (401, "invalid_api_key")      # a name is not a key


def test_without_keys_the_api_is_open_on_loopback_only():
    assert ApiKeys([], loopback=True).authenticate(None).name is None
    assert ApiKeys([], loopback=True).authenticate("Bearer anything").name is None
    off = ApiKeys([], loopback=False)
    assert refusal(off, None) == (403, "api_keys_not_configured")
    assert refusal(off, "Bearer anything") == (403, "api_keys_not_configured")
