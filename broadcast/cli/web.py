"""`broadcast web`: serve the registrants' web app and the Twilio webhooks with uvicorn.

`cli.py` adds it with `app.add_typer(web.app)`, so its one command sits at the top level. The
Procfile's `web:` line runs the same app with uvicorn directly (`create_app_from_env`).
"""

from __future__ import annotations

import typer

from broadcast.cli import common

app = typer.Typer(help="The registrants' web app.")


@app.command("web")
@common.one_line_errors
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", envvar="PORT", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", help="uvicorn worker processes."),
) -> None:
    """Serve sign-up, confirm, manage and unsubscribe pages and the Twilio webhooks.

    Links in messages and the Twilio signature check use BROADCAST_PUBLIC_URL, so set it to the
    address people and Twilio reach (the proxy's, when behind one).
    """
    import uvicorn

    from broadcast.web import create_app

    settings = common.settings()
    if workers > 1:
        # Each worker builds its own app; rate limits and replay checks then need Redis.
        uvicorn.run(
            "broadcast.web.asgi:app",
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,  # the app trusts BROADCAST_FORWARDED_ALLOW_IPS only
        )
        return
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=False,
        log_level="info",
    )
