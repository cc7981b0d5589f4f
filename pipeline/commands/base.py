"""The command line's command and group classes: titled help sections, examples, one-line errors.

Help comes from ``cloup`` (option groups and command sections on top of click): every option
carries the title of its section (``help_section``, set by ``pipeline.commands.options``) and a
command's options are shown under those titles in a fixed order. Each command may name
``examples``; they and the help text say ``python cli.py``, which is replaced at render time by
what the user typed (``small-data``, ``python -m pipeline``), read from click's context.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
from collections.abc import Sequence

import click
import cloup

README_PROGRAM = "python cli.py"  # how help texts and library messages name the command line
# The order of the sections in every help; a title not listed goes just before Output.
SECTIONS = ("Data", "Split", "Steps", "Model", "Head", "Layers", "Training",
            "Learning-rate schedule", "Augmentation", "Devices", "Feature cache", "Output")
FIELD = re.compile(r"`([a-z_][a-z0-9_]*)`")
CONTEXT = cloup.Context.settings(
    help_option_names=["-h", "--help"], max_content_width=100, align_option_groups=True,
    formatter_settings=cloup.HelpFormatter.settings(
        col1_max_width=32, theme=cloup.HelpTheme(heading=cloup.Style(bold=True))),
)


def program_name(ctx: click.Context | None = None) -> str:
    """The command the user typed: ``python cli.py``, ``small-data`` or ``python -m pipeline``."""
    ctx = ctx or click.get_current_context(silent=True)
    name = ctx.find_root().info_name if ctx is not None else None
    if not name:
        return README_PROGRAM
    return f"python {name}" if name.endswith(".py") and " " not in name else name


def in_users_words(text: str, ctx: click.Context | None = None) -> str:
    """``text`` with ``python cli.py`` replaced by the command the user typed."""
    return text.replace(README_PROGRAM, program_name(ctx))


def flag_of(param: click.Parameter) -> str:
    """How the user wrote ``param``: its long flag (``--image-size``) or its argument name."""
    if isinstance(param, click.Option):
        return next((o for o in param.opts if o.startswith("--")), param.opts[0])
    return param.human_readable_name


class HelpMixin:
    """Options grouped under their ``help_section`` titles, and ``examples`` after the help."""

    def __init__(self, *args, examples: Sequence[str] = (), **kwargs) -> None:
        sections: dict[str, cloup.OptionGroup] = {}
        for param in kwargs.get("params") or ():
            title = getattr(param, "help_section", None)
            if isinstance(param, click.Option) and title:
                param.group = sections.setdefault(title, cloup.OptionGroup(title))
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)
        order = {title: index for index, title in enumerate(SECTIONS)}
        self.option_groups.sort(key=lambda group: order.get(group.title, len(SECTIONS) - 1.5))

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        text = in_users_words(inspect.cleandoc(self.help or "").partition("\f")[0], ctx)
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(text)
        if self.examples:
            formatter.write_paragraph()
            formatter.write_heading("Examples")
            with formatter.indentation():
                for line in self.examples:  # verbatim: a shell line is not re-wrapped
                    formatter.write(" " * formatter.current_indent + in_users_words(line, ctx)
                                    + "\n")

    def get_short_help_str(self, limit: int = 45) -> str:
        """The help's first sentence whole (wrapped in the list of commands, not cut)."""
        return in_users_words(super().get_short_help_str(max(limit, 150)))


class Command(HelpMixin, cloup.Command):
    """A command whose help shows titled sections and examples."""


class Commands(HelpMixin, cloup.Group):
    """A group whose commands turn user mistakes into one line on stderr and exit status 2.

    Library messages name config fields in backticks; a field that is an option of the
    command that ran is shown as that option's flag (`image_size` -> --image-size), and
    ``python cli.py`` as the command the user typed.

    Stops follow one rule in every command (``pipeline.system.interrupts``): SIGTERM stops like
    Ctrl-C, and the exit status is 130 for Ctrl-C, 143 for SIGTERM, also when training
    absorbed the stop to finish its run's files (or a failure: status 2, as any error).
    A run that did not complete, read by any command, is named in a one-line warning.
    """

    command_class = Command
    group_class = type  # sub-groups (data, visualize) are of this class too

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands first: they are what a group's help is read for."""
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_commands(ctx, formatter)
        self.format_params(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def invoke(self, ctx: click.Context):
        from pipeline.errors import PipelineError
        from pipeline.system import interrupts
        from pipeline.system.paths import disk_error

        try:
            with interrupts.signals_stop(), _one_line_run_warnings():
                interrupts.take_deferred()  # a stop left by an earlier call is not ours
                result = super().invoke(ctx)
                deferred = interrupts.take_deferred()
                if deferred is not None:
                    raise deferred
                interrupts.raise_swallowed()  # the exit status says so all the same
                return result
        except OSError as error:  # a place the user named cannot take what is written there
            problem = disk_error(error, error.filename or "output")
            if problem is None:
                raise  # not the user's to fix: a bug, with its traceback
            click.secho(f"error: {in_users_words(str(problem), ctx)}", fg="red", err=True)
            sys.exit(2)
        except PipelineError as error:
            command = self.commands.get(ctx.invoked_subcommand or "")
            flags = {**_every_flag(ctx.find_root().command),  # a hint naming another command's
                     **{p.name: flag_of(p) for p in (command.params if command else [])}}
            text = FIELD.sub(lambda m: flags.get(m.group(1), m.group(0)), str(error))
            click.secho(f"error: {in_users_words(text, ctx)}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt as stop:
            click.echo("terminated" if isinstance(stop, interrupts.Terminated) else "interrupted",
                       err=True)
            sys.exit(interrupts.exit_status(stop))


def _every_flag(command: click.Command) -> dict[str, str]:
    """Field name -> flag over every command under ``command``, for a message that points at
    another command (``data prepare`` with ``source``, seen from ``extract``)."""
    flags = {p.name: flag_of(p) for p in command.params if isinstance(p, click.Option)}
    for sub in getattr(command, "commands", {}).values():
        flags.update(_every_flag(sub))
    return flags


@contextlib.contextmanager
def _one_line_run_warnings():
    """Show ``IncompleteRunWarning`` as ``warning: ...`` on stderr, every time it is raised."""
    import warnings

    from pipeline.runs.folder import IncompleteRunWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", IncompleteRunWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, IncompleteRunWarning):
                click.secho(f"warning: {message}", fg="yellow", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
