"""``botkit init [PATH]``: write the example config, the reference of every key, to start
from.

The example ships inside the package (``botkit/cli/config.example.toml``, a symlink to the
repository's ``config.example.toml`` that the build copies as a file), so an install from
a wheel has it too, where no checkout is at hand.
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

from botkit.errors import BotkitError

__all__ = ["DEFAULT_PATH", "InitError", "example_config", "run_init", "write_example"]

DEFAULT_PATH = "botkit.toml"


class InitError(BotkitError):
    """The example config could not be written where asked."""


def example_config() -> str:
    """The text of the example config shipped with botkit."""
    return files("botkit.cli").joinpath("config.example.toml").read_text(encoding="utf-8")


def write_example(path: Path) -> None:
    """Write the example config to ``path``, a new file; never replaces one.

    Raises:
        InitError: ``path`` exists (a file or a directory), its directory does not, or
            it cannot be written.
    """
    if path.is_dir():
        raise InitError(f"{path} is a directory; give a file name, e.g. {path / DEFAULT_PATH}")
    try:
        # "x": created here or not at all, even if another process makes it meanwhile.
        with path.open("x", encoding="utf-8") as out:
            out.write(example_config())
    except FileExistsError:
        raise InitError(f"{path} exists already; it is left as it is") from None
    except FileNotFoundError as exc:
        if not path.parent.is_dir():
            raise InitError(f"cannot write {path}: no directory {path.parent}") from None
        raise InitError(f"cannot write {path}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise InitError(f"cannot write {path}: {exc.strerror or exc}") from None


def _next_steps(path: Path) -> str:
    # `run` finds ./botkit.toml by itself; any other file is named with -c.
    config = "" if path == Path(DEFAULT_PATH) else f" -c {path}"
    return "\n".join(
        [
            f"wrote {path}: every key with its default value, commented. Next:",
            "  - [bot]: name, working_language, system_prompt and the customer-facing texts",
            "  - [backend] kind and its table: the local engine's model, or an",
            "    OpenAI-compatible server ([backend.openai])",
            "  - [connectors.*]: the channels to serve (the web chat is on); secrets such as",
            '    tokens stay in the environment, written "${VAR}" in the file',
            "  - [store] url: where conversations are kept (default ./botkit.db, relative to",
            "    the directory botkit runs in)",
            f"then: botkit check-config {path}   and   botkit run{config}",
        ]
    )


def run_init(args: argparse.Namespace) -> int:
    """``botkit init [PATH]``."""
    path = Path(args.path)
    write_example(path)
    print(_next_steps(path))
    return 0
