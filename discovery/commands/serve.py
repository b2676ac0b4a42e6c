"""`discovery serve`: the web UI for investigators, served by waitress (a production WSGI server)."""

from __future__ import annotations

import click

from discovery.commands._common import CONTEXT_SETTINGS, case_option, open_case


@click.command(context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes the case to the whole network).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
def serve(case_dir: str, host: str, port: int, threads: int) -> None:
    """Serve the search web UI for a case (search, hits in context, conversations, provenance).

    Every page has a JSON twin: add .json to its path (e.g. /search.json?q=whitewash&context=3).
    Stop with Ctrl-C.

    \b
    Example:
        discovery serve --case ./case --port 5000
        # then open http://127.0.0.1:5000/search?q=whitewash
    """
    from waitress import create_server

    from discovery.web import create_app

    open_case(case_dir).close()  # a clear usage error if the folder is not a case
    app = create_app(case=case_dir)
    server = create_server(app, host=host, port=port, threads=threads, ident="discovery")
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"discovery: serving {case_dir} on http://{shown_host}:{server.effective_port}/ (Ctrl-C stops)",
               err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.extensions["discovery_cases"].close()


COMMANDS = [serve]
