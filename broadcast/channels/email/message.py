"""Build the MIME message for an email alert; shared by the SMTP channel and the outbox."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from broadcast.channels.base import OutboundMessage


def sender_domain(sender: str) -> str:
    """The domain of a From address ("Alerts <alerts@force.police.uk>" -> "force.police.uk")."""
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def envelope_sender(sender: str) -> str:
    """The bare address for MAIL FROM."""
    return parseaddr(sender)[1] or sender


def message_id_for(message: OutboundMessage, domain: str) -> str:
    """The delivery's own Message-ID: the same every time it is sent, so the copy a recovery sends
    after a crash collapses with the first in mail clients (docs/delivery.md, "Recovery")."""
    if message.message_key:
        return f"<{message.message_key}@{domain}>"
    return make_msgid(idstring=str(message.delivery_id), domain=domain)


def build_email(message: OutboundMessage, sender: str) -> EmailMessage:
    """A multipart/alternative message (text, plus HTML when given) with a Message-ID in the
    sender's domain and, when there is an unsubscribe link, RFC 8058 one-click headers."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = Address(addr_spec=message.to)
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id_for(message, sender_domain(sender))
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.body)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email
