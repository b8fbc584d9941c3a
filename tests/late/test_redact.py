from __future__ import annotations

import io
import logging

from bootseed.late.redact import REDACTED, RedactingFilter, Redactor

KEY = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDmQe1fakekeymaterialforredactiontestsonly0123456789abcdef==
-----END OPENSSH PRIVATE KEY-----
"""


def test_learns_secrets_from_config() -> None:
    cfg = {
        "users": [{"name": "ann", "plain_text_passwd": "Tr0ub4dor&3", "lock_passwd": False}],
        "chpasswd": {"list": "bob:Horse-Battery\ncarl:RANDOM"},
        "ssh_keys": {"ed25519_private": KEY, "ed25519_public": "ssh-ed25519 AAAA pub"},
        "runcmd": ["echo hello"],
    }
    r = Redactor()
    r.learn_from_config(cfg)
    line = "set Tr0ub4dor&3 and Horse-Battery; key line QyNTUxOQAAACDmQe1fakekeymaterialfor"
    assert "Tr0ub4dor" not in r.text(line) and "Horse-Battery" not in r.text(line)
    out = r.data(cfg)
    assert out["users"][0]["plain_text_passwd"] == REDACTED
    assert out["users"][0]["lock_passwd"] is False
    assert out["ssh_keys"]["ed25519_private"] == REDACTED
    assert out["ssh_keys"]["ed25519_public"] == "ssh-ed25519 AAAA pub"
    assert out["runcmd"] == ["echo hello"]
    for secret_line in KEY.splitlines()[1:3]:
        assert secret_line not in r.text(KEY)


def test_short_values_are_not_searched_in_text() -> None:
    r = Redactor(["ab", "the"])
    assert r.text("the cab") == "the cab"


def test_logging_filter_redacts_args_and_tracebacks() -> None:
    r = Redactor(["s3cr3t-value"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(r))
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("password is %s", "s3cr3t-value")
        try:
            raise ValueError("bad s3cr3t-value")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "s3cr3t-value" not in text
    assert "password is <redacted>" in text
    assert f"ValueError: bad {REDACTED}" in text
