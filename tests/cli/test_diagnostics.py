"""Library warnings as the CLI renders them: a ``warning: ...`` line by default, one JSON
object per warning under ``-o json``, nothing under ``-o quiet``; stdout is never touched."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from sparkwing import diagnostics
from sparkwing.cli.app import output_mode


@pytest.fixture
def handler() -> Iterator[diagnostics.StderrDiagnostics]:
    installed = diagnostics.install(output_mode)
    yield installed
    logging.getLogger("sparkwing").removeHandler(installed)


@click.command()
@click.option("-o", "output", type=click.Choice(["table", "json", "quiet"]), default="table")
def warn_cmd(output: str) -> None:
    click.echo(f"result {output}")
    logging.getLogger("sparkwing.state").warning("store %s is down", "s3://b/")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["warning: store s3://b/ is down"]),
        (["-o", "table"], ["warning: store s3://b/ is down"]),
        (["-o", "json"], [json.dumps({"level": "warning", "message": "store s3://b/ is down"})]),
        (["-o", "quiet"], []),
    ],
)
def test_warnings_follow_the_output_option(
    handler: diagnostics.StderrDiagnostics, args: list[str], expected: list[str]
) -> None:
    result = CliRunner().invoke(warn_cmd, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == expected
    assert result.stdout.splitlines() == [f"result {(args or ['', 'table'])[-1]}"]


def test_installing_again_keeps_one_handler(handler: diagnostics.StderrDiagnostics) -> None:
    again = diagnostics.install(output_mode)
    try:
        ours = [
            h
            for h in logging.getLogger("sparkwing").handlers
            if isinstance(h, diagnostics.StderrDiagnostics)
        ]
        assert ours == [again]
    finally:
        logging.getLogger("sparkwing").removeHandler(again)


def test_infos_stay_silent(handler: diagnostics.StderrDiagnostics) -> None:
    result = CliRunner().invoke(
        click.command()(lambda: logging.getLogger("sparkwing.cache").info("hit"))
    )
    assert result.exit_code == 0
    assert result.stderr == ""
