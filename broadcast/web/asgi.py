"""An ASGI entry point for process managers: `uvicorn broadcast.web.asgi:app`."""

from __future__ import annotations

from broadcast.settings import get_settings
from broadcast.web.app import create_app

app = create_app(get_settings())
