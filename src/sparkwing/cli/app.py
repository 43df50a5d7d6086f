"""The click application: global options, lazy subcommands and the error contract
(``error: <one line>`` on stderr, exit 2 for usage/config, never a traceback)."""

from __future__ import annotations

import importlib
from typing import Any

import click

from sparkwing import diagnostics
from sparkwing.__about__ import __version__
from sparkwing.cli.outcome import guarded, report_error, wants_json

# name -> (module, attribute, short help). Modules are imported only when the command runs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("sparkwing.cli.run", "run_cmd", "Run a pipeline."),
    "runs": ("sparkwing.cli.runs", "runs_group", "Inspect past and running runs."),
    "pipeline": (
        "sparkwing.cli.pipeline",
        "pipeline_group",
        "Create, list and describe pipelines.",
    ),
    "secrets": ("sparkwing.cli.secrets", "secrets_group", "Manage secrets and config values."),
    "dashboard": ("sparkwing.cli.dashboard", "dashboard_cmd", "Show runs in a browser."),
    "doctor": (
        "sparkwing.cli.doctor",
        "doctor_cmd",
        "Check the setup; mark runs whose process died.",
    ),
    "profile": ("sparkwing.cli.profile", "profile_group", "Show how the profile resolves."),
    "worker": (
        "sparkwing.cli.worker",
        "worker_cmd",
        "Execute runs queued with `runs submit`, each exactly once.",
    ),
    "workers": ("sparkwing.cli.workers", "workers_group", "List the workers sharing a queue."),
    "cache": (
        "sparkwing.cli.cache",
        "cache_group",
        "Explain, list and prune pipeline bundles.",
    ),
    "scheduler": (
        "sparkwing.cli.scheduler",
        "scheduler_cmd",
        "Fire the project's on.schedule ticks into the run queue.",
    ),
    "schedules": ("sparkwing.cli.schedules", "schedules_group", "List schedules and next times."),
    "controller": (
        "sparkwing.cli.controller",
        "controller_group",
        "Serve the controller API; manage its tokens.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        try:
            module = importlib.import_module(entry[0])
        except ModuleNotFoundError as exc:
            if exc.name == entry[0]:
                return None
            raise
        cmd = getattr(module, entry[1])
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(
    __version__, "--version", "-V", prog_name="sparkwing", message="%(prog)s %(version)s"
)
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Run as if started in DIR (where .sparkwing/ is looked up from).",
)
@click.pass_context
def cli(ctx: click.Context, directory: str | None) -> None:
    """Sparkwing: pipelines as code. Write pipelines in Python under .sparkwing/, run them
    with `sparkwing run NAME`, and inspect every run afterwards with `sparkwing runs`."""
    ctx.ensure_object(dict)
    ctx.obj["directory"] = directory


def output_mode() -> str:
    """How library warnings render for the command being run: ``json`` or ``quiet`` when
    its ``-o`` option says so, else ``human``."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        output = ctx.params.get("output")
        if output is not None:
            return output if output in ("json", "quiet") else "human"
        ctx = ctx.parent
    return "human"


def run_cli(args: list[str]) -> int:
    diagnostics.install(output_mode)
    return _run(args)


def _run(args: list[str]) -> int:
    as_json = wants_json(args)

    def command() -> int:
        try:
            result = cli.main(args=args, prog_name="sparkwing", standalone_mode=False)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
            return 2
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            return report_error(exc.format_message().replace("\n", " ") + where, 2, as_json)
        except click.exceptions.Abort:
            return report_error("aborted", 130, as_json)
        except click.exceptions.Exit as exc:
            return int(exc.exit_code)
        except click.ClickException as exc:
            return report_error(exc.format_message(), exc.exit_code, as_json)
        return int(result) if isinstance(result, int) else 0

    return guarded(args, command)


def obj(ctx: click.Context) -> dict[str, Any]:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, dict) else {}
