from __future__ import annotations

import time

import pytest

from broadcast.channels import PermanentChannelError, SendResult, TransientChannelError
from broadcast.channels.email.channel import SmtpEmailChannel
from broadcast.channels.email.config import SmtpConfig
from tests.channels.conftest import PUBLIC_URL, email
from tests.support.servers import free_port
from tests.support.smtp_server import SmtpTestServer, smtp_test_server

SENDER = "Example Constabulary <alerts@alerts.example.police.uk>"


def make_channel(server: SmtpTestServer, **kwargs: object) -> SmtpEmailChannel:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "sender": SENDER,
        "tls": "none",
        "timeout": 5.0,
    } | kwargs
    return SmtpEmailChannel(SmtpConfig(**fields))  # type: ignore[arg-type]


def test_sends_multipart_email_with_message_id_and_one_click_unsubscribe(smtp):
    with make_channel(smtp) as channel:
        result = channel.send(email(delivery_id=42, to="resident@example.org"))

    [received] = smtp.messages
    message = received.message
    assert received.mail_from == "alerts@alerts.example.police.uk"
    assert received.rcpt_tos == ["resident@example.org"]
    assert message["To"] == "resident@example.org"
    assert message["Subject"] == "Police alert: burglaries in Northfield"
    assert message["Message-ID"].strip() == result.provider_id
    assert result.provider_id.endswith("@alerts.example.police.uk>")
    assert message["List-Unsubscribe"] == f"<{PUBLIC_URL}/u/abc123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "Three burglaries" in text.get_content()
    assert html is not None and "<b>last night</b>" in html.get_content()


def test_plain_text_only_without_unsubscribe_headers(smtp):
    with make_channel(smtp) as channel:
        channel.send(email(html=None, unsubscribe_url=None))
    message = smtp.messages[0].message
    assert message.get_content_type() == "text/plain"
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None


def test_reuses_a_small_pool_of_connections(smtp):
    # When 60 emails go out, both one by one and pipelined
    with make_channel(smtp, pool_size=3) as channel:
        for i in range(10):
            channel.send(email(delivery_id=i, to=f"r{i}@example.org"))
        results = channel.send_many(
            [email(delivery_id=i, to=f"r{i}@example.org") for i in range(10, 60)]
        )

    # Then all arrived, in far fewer connections than messages
    assert all(isinstance(r, SendResult) for r in results)
    assert len(smtp.messages) == 60
    assert 1 <= smtp.connections <= 3
    ids = [r.provider_id for r in results]  # type: ignore[union-attr]
    assert len(set(ids)) == 50


@pytest.mark.parametrize(
    ("refusal", "error", "code", "suppress"),
    [
        ("550 5.1.1 No such user", PermanentChannelError, "550", True),
        ("553 5.1.3 Bad address", PermanentChannelError, "553", True),
        ("450 4.2.1 Mailbox busy", TransientChannelError, "450", False),
    ],
)
def test_recipient_refusals_are_classified(smtp, refusal, error, code, suppress):
    smtp.refuse_recipient("gone@example.org", refusal)
    with make_channel(smtp, pool_size=1) as channel:
        with pytest.raises(error) as raised:
            channel.send(email(to="gone@example.org"))
        # The same pooled connection carries on after the refusal
        channel.send(email(to="resident@example.org"))
    assert raised.value.code == code and raised.value.suppress is suppress
    assert "gone@example.org" not in str(raised.value)
    assert smtp.connections == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("554 5.7.1 Rejected as spam", PermanentChannelError),
        ("451 4.3.0 Try again later", TransientChannelError),
    ],
)
def test_data_refusals_are_classified_and_never_suppress(smtp, reply, error):
    smtp.refuse_data(reply)
    with make_channel(smtp) as channel, pytest.raises(error) as raised:
        channel.send(email())
    assert raised.value.code == reply[:3] and raised.value.suppress is False


def test_a_server_that_is_down_is_transient():
    nothing_listens = SmtpTestServer(None)
    with (
        make_channel(nothing_listens, port=free_port()) as channel,
        pytest.raises(TransientChannelError) as raised,
    ):
        channel.send(email())
    assert raised.value.maybe_sent is False


def test_a_pooled_connection_the_server_closed_is_replaced(smtp):
    with make_channel(smtp, pool_size=1) as channel:
        channel.send(email(delivery_id=1))
        # Given the server hangs up on the idle pooled connection
        smtp.hang_up_all()
        time.sleep(0.2)
        # When we send again, a new connection is made and the email arrives
        channel.send(email(delivery_id=2))
    assert len(smtp.messages) == 2
    assert smtp.connections == 2


def test_send_many_isolates_failures_in_order(smtp):
    smtp.refuse_recipient("gone@example.org")
    with make_channel(smtp) as channel:
        results = channel.send_many(
            [email(1, "a@example.org"), email(2, "gone@example.org"), email(3, "b@example.org")]
        )
    assert isinstance(results[0], SendResult) and isinstance(results[2], SendResult)
    assert isinstance(results[1], PermanentChannelError) and results[1].suppress
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["a@example.org", "b@example.org"]


@pytest.mark.parametrize("tls", ["starttls", "tls"])
def test_tls_modes_with_authentication(tls):
    with smtp_test_server(tls=tls, credentials=("alerts", "s3cret")) as server:
        with make_channel(
            server, tls=tls, username="alerts", password="s3cret", tls_context=server.tls_context
        ) as channel:
            channel.send(email())
        assert len(server.messages) == 1


def test_wrong_password_is_transient_so_fixing_settings_rescues_the_alert():
    with smtp_test_server(credentials=("alerts", "s3cret")) as server:
        with (
            make_channel(server, username="alerts", password="wrong") as channel,
            pytest.raises(TransientChannelError) as raised,
        ):
            channel.send(email())
        assert raised.value.code == "535"
        assert server.messages == []


def test_the_from_line_names_the_force_when_the_address_is_bare(smtp) -> None:
    from broadcast.settings import Settings

    # Given BROADCAST_EMAIL_FROM with no display name
    settings = Settings(
        _env_file=None,
        force_name="Suffolk Constabulary",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_tls="none",
        email_from="alerts@suffolk.example.police.uk",
    )
    with SmtpEmailChannel(SmtpConfig.from_settings(settings)) as channel:
        channel.send(email(delivery_id=7, to="resident@example.org"))
    # Then the email is from the force, by name; a name given in the setting is kept
    [received] = smtp.messages
    assert received.message["From"] == "Suffolk Constabulary <alerts@suffolk.example.police.uk>"
    assert received.mail_from == "alerts@suffolk.example.police.uk"
    named = settings.model_copy(update={"email_from": "Alerts <a@suffolk.example.police.uk>"})
    assert named.email_sender("") == "Alerts <a@suffolk.example.police.uk>"
