"""An ASGI entry point for process managers: `uvicorn broadcast.web.asgi:app`."""

from __future__ import annotations

from broadcast.web.app import create_app_from_env

app = create_app_from_env()
