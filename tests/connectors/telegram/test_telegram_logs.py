"""The bot token never appears in logs, even where the libraries log request URLs."""

from __future__ import annotations

import logging

import pytest
from tg_helpers import TOKEN, MakeTg

SECRET_PART = TOKEN.split(":", 1)[1]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_token_is_not_in_captured_logs(
    make_tg: MakeTg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tg = await make_tg()
    fake = tg.fake
    fake.fail("sendMessage", status=502)  # a retried error
    fake.fail("sendMessage", retry_after=1)  # flood control
    fake.push(fake.updates.message(701, "first"))
    await tg.wait_answers(1, within=30)
    fake.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    fake.fail("getUpdates", status=500)
    fake.push(fake.updates.message(702, "second"))
    await fake.wait_until(lambda: len(fake.calls_to("sendMessage", ok=False)) >= 4, 30)
    await tg.settle()
    await tg.stop()

    text = caplog.text
    # The libraries did log the URLs (so the check means something), redacted.
    assert any(r.name == "httpx" for r in caplog.records)
    assert "/bot<token>/sendMessage" in text
    assert "Set Bot API URL" in text
    for record in caplog.records:
        assert SECRET_PART not in record.getMessage()
        assert SECRET_PART not in (record.exc_text or "")
    assert SECRET_PART not in text


async def test_filter_is_removed_on_disconnect(make_tg: MakeTg) -> None:
    tg = await make_tg()
    httpx_logger = logging.getLogger("httpx")
    assert tg.connector.redactor in httpx_logger.filters
    await tg.stop()
    assert tg.connector.redactor not in httpx_logger.filters


def test_redactor_masks_messages_arguments_and_tracebacks() -> None:
    from connectors.telegram.redact import TokenRedactor

    redactor = TokenRedactor(TOKEN)
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "GET %s", (f"/bot{TOKEN}/getMe",), None
    )
    assert redactor.filter(record)
    assert record.getMessage() == "GET /bot<token>/getMe"
    try:
        raise ValueError(f"boom https://api/bot{TOKEN}/x")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "telegram.Bot", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    redactor.filter(record)
    assert record.exc_text is not None and SECRET_PART not in record.exc_text
    assert record.exc_info is None  # nobody can format the live exception again
    assert SECRET_PART not in logging.Formatter().format(record)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_webhook_secret_is_not_in_debug_logs(
    make_tg: MakeTg, caplog: pytest.LogCaptureFixture
) -> None:
    # python-telegram-bot logs setWebhook's parameters (secret_token too) at DEBUG.
    from tg_helpers import SECRET, webhook_section

    caplog.set_level(logging.DEBUG)
    tg = await make_tg(webhook_section())
    await tg.stop()
    assert "setWebhook" in caplog.text  # the call was logged, so the check means something
    assert SECRET not in caplog.text
    assert "<secret>" in caplog.text
