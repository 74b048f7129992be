import pytest

from shared import tokens


def test_issued_token_is_url_safe_and_carries_64_random_bytes():
    token, _ = tokens.issue(tokens.new_pause_id())
    assert len(token) == tokens.TOKEN_LENGTH == 118
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tokens.SECRET_BYTES >= 64


def test_tokens_are_unique_and_only_their_hash_is_returned_for_storage():
    pause_id = tokens.new_pause_id()
    issued = [tokens.issue(pause_id) for _ in range(200)]
    assert len({token for token, _ in issued}) == 200
    for token, stored_hash in issued:
        secret = tokens.parse(token).secret
        assert secret not in stored_hash and token not in stored_hash
        assert tokens.secret_matches(secret, stored_hash)


def test_parse_splits_pause_id_and_secret():
    pause_id = tokens.new_pause_id()
    token, _ = tokens.issue(pause_id)
    parsed = tokens.parse(token)
    assert parsed.pause_id == pause_id
    assert str(parsed) == token


@pytest.mark.parametrize("bad", [
    "", "abc", "a" * 117, "a" * 119, "0" * 32 + "!" * 86, "0" * 32 + "a" * 85 + "=",
    "../" * 40, "<script>alert(1)</script>" * 5, "G" * 32 + "a" * 86, "0" * 32 + "a" * 85 + "\n",
])
def test_parse_rejects_anything_that_is_not_a_token(bad):
    with pytest.raises(tokens.MalformedToken):
        tokens.parse(bad)


def test_wrong_secret_does_not_match():
    token, stored_hash = tokens.issue(tokens.new_pause_id())
    other, _ = tokens.issue(tokens.new_pause_id())
    assert not tokens.secret_matches(tokens.parse(other).secret, stored_hash)
    assert not tokens.secret_matches(tokens.parse(token).secret, "")


def test_decision_links_sit_under_the_base_url_and_the_api_prefix():
    from shared.tokens import decision_links

    assert decision_links("https://approvals.contoso.com/", "tok") == {
        "restart_url": "https://approvals.contoso.com/api/restart/tok",
        "cancel_url": "https://approvals.contoso.com/api/cancel/tok"}
