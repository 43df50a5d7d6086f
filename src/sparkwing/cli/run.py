"""``sparkwing run``: resolve the project and profile, then execute the pipeline in a runner
child process and record what happens to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from sparkwing.cli.common import PROFILE_OPTION, load_project, resolve


@click.command(
    "run",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "allow_interspersed_args": False,
    },
)
@click.argument("pipeline")
@PROFILE_OPTION
@click.option(
    "--sw-parallel",
    "parallel",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Run at most N jobs at once (default: CPU count).",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Choice(["auto", "plain", "json", "quiet"]),
    default="auto",
    show_default=True,
    help="Progress: live on a terminal, plain lines otherwise; json prints one "
    "document with the run and its jobs at the end.",
)
@click.option(
    "--sw-pause-before",
    "pause_before",
    multiple=True,
    metavar="JOB",
    help="Pause before JOB starts, until `sparkwing runs resume` (repeatable).",
)
@click.option(
    "--sw-pause-on-failure",
    "pause_on_failure",
    is_flag=True,
    help="Pause a job that failed (after its retries) with its workspace kept; "
    "`sparkwing runs resume` runs it again, `--abort` cancels the run.",
)
@click.option(
    "--sw-no-bundle-cache",
    "no_bundle_cache",
    is_flag=True,
    help="Rebuild the pipeline bundle (reinstall its requirements) instead of reusing one.",
)
@click.option("--sw-trigger", "trigger", default="cli", hidden=True)
# `sparkwing worker` starts a queued run under the id `runs submit` gave it.
@click.option("--sw-run-id", "run_id", default=None, hidden=True)
@click.argument("pipeline_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    /,
    pipeline: str,
    pipeline_args: tuple[str, ...],
    **options: Any,
) -> int:
    """Run PIPELINE. Flags after the name that sparkwing does not own are the pipeline's
    inputs (for example `sparkwing run deploy --env prod`); sparkwing's own options may
    come before or after the name.

    Exit codes: 0 success, 1 the run failed, 2 usage or configuration error, 130 interrupted.
    """
    from sparkwing.conf.interpolate import interpolate_spec
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.engine.runspec import RunSpec
    from sparkwing.ids import is_run_id, new_run_id
    from sparkwing.surfaces.spec import SurfaceSpec

    rest = _take_engine_options(ctx, list(pipeline_args), options)
    profile: str | None = options["profile"]
    parallel: int | None = options["parallel"]
    output: str = options["output"]
    trigger: str = options["trigger"]

    project = load_project(ctx, required=True)
    assert project is not None
    entry = project.pipeline(pipeline)
    resolved = resolve(ctx, profile, pipeline, project)
    run_id = options["run_id"] or new_run_id()
    if not is_run_id(run_id):
        raise click.UsageError(f"--sw-run-id: {run_id!r} is not a run id")

    def final_spec(surface: str) -> SurfaceSpec:
        return interpolate_spec(
            resolved.spec(surface), run_id=run_id, pipeline=pipeline, profile=resolved.name
        )

    final = ResolvedProfile(
        resolved.name,
        resolved.source,
        state=final_spec("state"),
        cache=final_spec("cache"),
        logs=final_spec("logs"),
        secrets=final_spec("secrets"),
    )
    if output == "auto":
        output = "tty" if sys.stdout.isatty() and os.environ.get("TERM") != "dumb" else "plain"
    spec = RunSpec(
        run_id=run_id,
        pipeline=pipeline,
        root=str(project.root),
        sparkwing_dir=str(project.dir),
        entrypoint=entry.entrypoint if entry else None,
        yaml_names=[p.name for p in project.pipelines],
        cli_args=rest,
        yaml_args=dict(entry.args) if entry else {},
        default_args=dict(project.defaults.args),
        profile_name=resolved.name,
        profile_source=resolved.source,
        surfaces=RunSpec.surfaces_of(final),
        surface_reasons=dict(resolved.reasons),
        parallel=parallel or os.cpu_count() or 2,
        pause_before=list(options["pause_before"]),
        pause_on_failure=bool(options["pause_on_failure"]),
        trigger=trigger,
        output=output,
    )
    from sparkwing.bundle.resolve import open_bundle

    def say(message: str) -> None:
        if output != "quiet":
            click.echo(message, err=True)

    with open_bundle(
        project.dir,
        final.cache,
        rebuild=bool(options["no_bundle_cache"]),
        say=say,
        warn=lambda message: click.echo(message, err=True),
    ) as bundle:
        spec.bundle = bundle.record()
        if bundle.sources_dir is not None:
            spec.sparkwing_dir = str(bundle.sources_dir)
            spec.sys_path = bundle.sys_path
        return _supervise(spec, isolated=bundle.isolated)


def _take_engine_options(ctx: click.Context, args: list[str], options: dict[str, Any]) -> list[str]:
    """Pull sparkwing's own options out of the arguments after the pipeline name (they win
    over the same options given before it); the rest are the pipeline's inputs."""
    by_flag = {
        flag: param
        for param in ctx.command.params
        if isinstance(param, click.Option) and not param.hidden
        for flag in param.opts
    }
    rest: list[str] = []
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        param = by_flag.get(name)
        if param is None or param.name is None:
            if name.startswith("--sw-"):
                own = ", ".join(sorted(f for f in by_flag if f.startswith("--sw-")))
                raise click.UsageError(f"unknown engine flag {name} (engine flags: {own})")
            rest.append(args[i])
            i += 1
            continue
        if param.is_flag:
            options[param.name] = True
        else:
            if not eq:
                if i + 1 >= len(args):
                    raise click.UsageError(f"option {name} requires a value")
                i += 1
                value = args[i]
            converted = param.type.convert(value, param, ctx)
            if param.multiple:
                options[param.name] = (*options.get(param.name, ()), converted)
            else:
                options[param.name] = converted
        i += 1
    return rest


# Third-party packages the CLI itself loaded: a forked runner drops them from sys.modules so
# the pipeline imports its own versions (a bundle may pin different ones).
_CLI_ONLY_PACKAGES = ("click", "yaml", "_yaml", "rich", "markdown_it", "pygments", "mdurl")


@contextlib.contextmanager
def _forwarding(send: Callable[[int], None]) -> Iterator[None]:
    """While waiting for the runner: Ctrl-C reaches the whole foreground group by itself,
    so only a SIGTERM / SIGHUP sent to the CLI alone is passed on."""

    def forward(signum: int, _frame: Any) -> None:
        if signum != signal.SIGINT:
            try:
                send(signum)
            except OSError:
                pass

    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _supervise(spec: Any, isolated: bool = False) -> int:
    """Start the runner and wait for it; if it dies without finishing the run, record that.

    ``isolated``: the pipeline has its own requirements; the forked runner then drops every
    third-party module the CLI had loaded and keeps user site-packages off ``sys.path``, so
    the bundle's packages (first on ``sys.path``) are the only ones the pipeline imports.
    ``SPARKWING_RUNNER=spawn`` starts a fresh interpreter instead."""
    if hasattr(os, "fork") and os.environ.get("SPARKWING_RUNNER") != "spawn":
        code = _supervise_fork(spec, isolated)
    else:
        code = _supervise_spawn(spec, isolated)
    if code in (0, 1, 2, 130):
        return code
    return _runner_died(spec, code)


def _drop_cli_imports(isolated: bool) -> None:
    """In the forked runner: forget the third-party modules the CLI imported (click, yaml,
    ...) so the pipeline imports its own versions; with a bundle, every installed package
    outside sparkwing, and the user's site-packages, too."""
    import site

    for name, module in list(sys.modules.items()):
        top = name.split(".", 1)[0]
        if top == "sparkwing":
            continue
        path = getattr(module, "__file__", None) or ""
        installed = isolated and ("site-packages" in path or "dist-packages" in path)
        if top in _CLI_ONLY_PACKAGES or installed:
            del sys.modules[name]
    if isolated:
        user_site = site.getusersitepackages()
        import sparkwing

        if not os.path.abspath(sparkwing.__file__).startswith(user_site + os.sep):
            sys.path[:] = [p for p in sys.path if p != user_site]


def _supervise_fork(spec: Any, isolated: bool = False) -> int:
    """Fork the runner: a separate process (its imports and crashes stay its own) that skips
    a second interpreter start and the imports the CLI already paid for."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; measured through the CLI tests
        code = 70
        try:
            for s in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _drop_cli_imports(isolated)
            from sparkwing.engine.runner import run_in_child

            code = run_in_child(spec)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    with _forwarding(lambda signum: os.kill(pid, signum)):
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    return os.waitstatus_to_exitcode(status)


def _supervise_spawn(spec: Any, isolated: bool = False) -> int:
    """Start the runner as a new interpreter (SPARKWING_RUNNER=spawn, or no fork); a bundle
    with requirements gets the isolation flags."""
    import subprocess

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    flags = isolation_flags() if isolated else []
    # -c rather than -m: runpy costs a few milliseconds of every run's start-up.
    proc = subprocess.Popen(
        [sys.executable, *flags, "-c", "from sparkwing.engine.runner import main; main()"],
        stdin=subprocess.PIPE,
        env=env,
    )
    with _forwarding(proc.send_signal):
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(spec.to_dict()).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        return proc.wait()


def isolation_flags() -> list[str]:
    """No current folder (-P) and no user site-packages (-s) on the runner's sys.path: only the
    bundle in front of this installation's own packages. Flags rather than PYTHONNOUSERSITE,
    so the commands jobs run keep the user's environment."""
    import site

    import sparkwing

    user_site = site.getusersitepackages()
    # Unless sparkwing itself was installed there (pip install --user): it must stay importable.
    if user_site and os.path.abspath(sparkwing.__file__).startswith(user_site + os.sep):
        return ["-P"]
    return ["-s", "-P"]


def _runner_died(spec: Any, code: int) -> int:
    from sparkwing.engine.recovery import record_runner_death
    from sparkwing.engine.runspec import spec_from_dict
    from sparkwing.surfaces.open import open_profile_state

    how = (
        f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    )
    reason = f"runner process {how}"
    try:
        state = open_profile_state(
            spec_from_dict(spec.surfaces["state"]), spec_from_dict(spec.surfaces["secrets"])
        )
        try:
            record_runner_death(state, spec.run_id, reason)
        finally:
            state.close()
    except Exception as exc:  # recording is best effort; the user still gets the cause
        click.echo(f"warning: could not record the failure of {spec.run_id}: {exc}", err=True)
    click.echo(f"error: run {spec.run_id} failed: {reason}", err=True)
    return 1
