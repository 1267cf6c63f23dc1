"""The registrants' web app (FastAPI): sign up, confirm, manage, unsubscribe, and the Twilio
webhooks. The only part of broadcast/ that imports a web framework; see docs/web.md."""

from __future__ import annotations

from broadcast.web.app import create_app

__all__ = ["create_app"]
