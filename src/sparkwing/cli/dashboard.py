"""``sparkwing dashboard``: the web dashboard of one profile's runs for the person at this
machine, reading the profile's surfaces directly, on 127.0.0.1 behind a one-time token."""

from __future__ import annotations

import sys

import click

from sparkwing.cli.common import PROFILE_OPTION


@click.command("dashboard", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4343,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free one).",
)
@click.option("--no-browser", is_flag=True, help="Print the link only; open no browser.")
@PROFILE_OPTION
@click.pass_context
def dashboard_cmd(ctx: click.Context, port: int, no_browser: bool, profile: str | None) -> None:
    """Serve the dashboard (runs, their DAGs and logs, approvals, the queue) of profile P's
    stores on http://127.0.0.1:PORT until Ctrl-C. The printed link carries a one-time token:
    the first browser to open it is logged in as you, with every permission you have on the
    stores (nobody else on this machine can use the port without it)."""
    import webbrowser

    from sparkwing.cli.common import load_project, resolve
    from sparkwing.cli.gates import who
    from sparkwing.controller.server import bind, make_server, url_of
    from sparkwing.dashboard.app import local_app
    from sparkwing.dashboard.auth import OneTimeLogin
    from sparkwing.dashboard.source import ProfileSource

    resolved = resolve(ctx, profile)
    project = load_project(ctx)
    sock = bind("127.0.0.1", port)
    login = OneTimeLogin(who())
    source = ProfileSource(resolved, project)
    try:
        app = local_app(source, login)
        where = source.where("state")
        server = make_server(app, access_log=False)
    except BaseException:
        source.close()
        sock.close()
        raise
    url = f"{url_of(sock, False)}/?token={login.value}"
    click.echo(f"sparkwing dashboard of profile {resolved.name} ({where}); Ctrl-C stops it")
    click.echo(f"  open: {url}")
    click.echo("  the link logs in once; keep it to yourself")
    sys.stdout.flush()
    if not no_browser:
        webbrowser.open(url)
    try:
        server.run(sockets=[sock])  # the app's shutdown closes the stores
    except KeyboardInterrupt:
        pass  # Ctrl-C is how it is meant to end (the server re-raises the signal it caught)
