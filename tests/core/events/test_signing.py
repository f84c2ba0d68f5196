"""Standard Webhooks signatures, checked against the specification's published example."""

from __future__ import annotations

import base64

import pytest

from qiao.core.events import signing

# The reference example of the Standard Webhooks project (standard-webhooks/standard-webhooks,
# libraries/go/webhook_test.go, TestWebhookSign), which every official library checks.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_of_the_specification_example() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


def test_verify_accepts_one_matching_signature_among_several_and_nothing_else() -> None:
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    args = (SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP)
    assert signing.verify(*args, SPEC_BODY, f"{other} {SPEC_SIGNATURE}")
    assert not signing.verify(*args, SPEC_BODY, other)
    assert not signing.verify(*args, b'{"test": 2432232315}', SPEC_SIGNATURE)


def test_new_secrets_are_whsec_with_a_32_byte_key_and_differ() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_")
    assert len(signing.secret_key(a)) == 32


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),
        ("whsec_not base64!", "followed by base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes, not 5"),
    ],
)
def test_bad_secrets_are_refused_with_the_reason(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signing.secret_key(secret)
