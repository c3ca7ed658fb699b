"""The `kgrag` command line. Each group of commands lives in kgrag/commands/<group>.py.

One error boundary (:class:`KgragGroup`) runs every command: whatever fails becomes ONE ``error: ...``
line on stderr (credentials masked) and an exit code from :data:`EXIT_CODES`; the traceback is printed
only with ``kgrag --debug ...`` or ``KGRAG_DEBUG=1``. The console script is :func:`main`.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click as typer._click
from typer.core import TyperGroup

from kgrag.commands import ask, doctor, edges, evaluate, graph, llm, measure, stats, text
from kgrag.errors import InputError, KgragError, SettingsError
from kgrag.settings import redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILED: "the run failed: a backend (graph store, LLM server, statistics API), a missing or damaged "
                 "artefact (graph, index, run file), a file that cannot be read or written, or a bug",
    EXIT_USAGE: "bad usage or input: an unknown command, option or option value, an invalid setting "
                "(KGRAG_*), an invalid question or options, an argument that is not UTF-8, a named file missing",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
DEBUG_ENV = "KGRAG_DEBUG"
EPILOG = ("Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items())
          + f". Errors are one 'error:' line; `kgrag --debug ...` or {DEBUG_ENV}=1 adds the traceback.")


def debug_requested(argv: Sequence[str], environ: dict[str, str] | None = None) -> bool:
    """True when ``--debug`` comes before the command name, or ``KGRAG_DEBUG`` is set to 1/true/yes."""
    env = os.environ if environ is None else environ
    if env.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    for arg in argv:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):
            return False
    return False


def check_utf8_arguments(argv: Sequence[str]) -> None:
    """Raise :class:`InputError` naming the first argument that was not valid UTF-8 on the command line.

    Python decodes argv with ``surrogateescape``: undecodable bytes become lone surrogates, which fail
    much later (JSON, tokenizers, HTTP). The message names the option the value belongs to, or the
    argument's position, and shows the bad bytes as ``\\xff``.
    """
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            if arg.startswith("--") and "=" in arg:
                what = f"the value of {arg.split('=', 1)[0]}"
            elif position > 1 and argv[position - 2].startswith("-") and not arg.startswith("-"):
                what = f"the value of {argv[position - 2]}"
            else:
                what = f"argument {position} after `kgrag`"
            raise InputError(f"{what} ('{shown}') is not valid UTF-8; give the text in UTF-8 "
                             "(check the terminal's or the script's encoding)") from None


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of a failure (see :data:`EXIT_CODES`)."""
    from pydantic import ValidationError

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, KgragError):
        return EXIT_USAGE if isinstance(exc, (ValueError, SettingsError)) else EXIT_FAILED
    if isinstance(exc, (ValidationError, UnicodeError)):
        return EXIT_USAGE
    return EXIT_FAILED


def describe_failure(exc: BaseException) -> str:
    """What failed, in one message: our own errors as they are, known failures of files, backends and
    inputs named, anything else marked as unexpected with the hint to rerun with --debug."""
    from pydantic import ValidationError

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, KgragError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, ValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()]
        return f"invalid {exc.title}: " + "; ".join(problems)
    if isinstance(exc, UnicodeError):
        return f"text that is not valid UTF-8 ({exc}); give files and arguments in UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"a JSON document is malformed ({exc}); rebuild or fix the file that was read"
    if isinstance(exc, OSError):
        return _describe_os_error(exc)
    backend = _describe_backend_error(exc)
    if backend:
        return backend
    return (f"unexpected {type(exc).__name__}: {str(exc)[:500] or 'no message'} (a bug? run with --debug "
            "for the traceback, and report it)")


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f]
    if files:
        return f"cannot use {' -> '.join(files)}: {reason}"
    return f"a file or connection failed ({type(exc).__name__}: {reason})"


def _describe_backend_error(exc: BaseException) -> str | None:
    """Failures of the graph driver or of an HTTP client that escaped a backend's own messages."""
    module = type(exc).__module__ or ""
    if module.startswith("neo4j"):
        detail = str(exc) or str(getattr(exc, "message", "") or "")
        return (f"the graph store failed ({type(exc).__name__}: {detail[:500]}); check KGRAG_GRAPH_URI, "
                "KGRAG_GRAPH_USER and KGRAG_GRAPH_PASSWORD and that the server runs")
    if module.startswith("httpx"):
        request = getattr(exc, "_request", None)
        where = f" to {request.url}" if request is not None else ""
        return f"an HTTP request{where} failed ({type(exc).__name__}: {str(exc)[:300] or 'no detail'})"
    return None


def report_failure(exc: BaseException, *, debug: bool) -> int:
    """Print one ``error:`` line (secrets masked; the traceback first with ``debug``); return the exit code."""
    if debug and not isinstance(exc, KeyboardInterrupt):
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        typer.echo(redact(trace), err=True, nl=False)
    message = one_line(redact(describe_failure(exc)))
    typer.echo(f"error: {message}", err=True)
    return exit_code_for(exc)


def one_line(message: str) -> str:
    """A message of several lines as one: lines joined by '; ' (by ' ' after a line ending in ':')."""
    parts = [line.strip() for line in message.splitlines() if line.strip()]
    joined = parts[0] if parts else ""
    for part in parts[1:]:
        joined += (" " if joined.endswith(":") else "; ") + part
    return joined


def report_usage_error(exc: typer.TyperException) -> int:
    """A usage error of click (unknown option, bad value) as one ``error:`` line naming the help to read."""
    if isinstance(exc, NoArgsIsHelpError):
        exc.show()
        return exc.exit_code
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if isinstance(exc, UsageError) and ctx is not None else ""
    message = " ".join(exc.format_message().replace("Value error, ", "").split())
    typer.echo(f"error: {redact(message)}{hint}", err=True)
    return exc.exit_code


class KgragGroup(TyperGroup):
    """The root command group, with the one error boundary of the CLI around every command."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        code = self._run(argv, prog_name or "kgrag", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, argv: list[str], prog_name: str, complete_var: str | None, extra: dict[str, Any]) -> int:
        debug = debug_requested(argv)
        try:
            check_utf8_arguments(argv)
            result = super().main(args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except typer.Exit as exc:
            return exc.exit_code
        except typer.TyperException as exc:
            return report_usage_error(exc)
        except typer.Abort:
            typer.echo("error: interrupted", err=True)
            return EXIT_INTERRUPTED
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the boundary: every failure, one line
            return report_failure(exc, debug=debug)
        return result if isinstance(result, int) else EXIT_OK


app = typer.Typer(name="kgrag", cls=KgragGroup, help="Grounded biomedical question answering.", epilog=EPILOG,
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help=f"Print the traceback of an error (also {DEBUG_ENV}=1).")
) -> None:
    """Grounded biomedical question answering."""


for group in (graph, edges, ask, text, stats, evaluate, measure, llm, doctor):
    group.register(app)


def main() -> None:
    """The `kgrag` console script: the Typer app behind the error boundary."""
    app(prog_name="kgrag")


if __name__ == "__main__":  # pragma: no cover
    main()
