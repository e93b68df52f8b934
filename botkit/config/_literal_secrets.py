"""Secrets written into the config file itself, for ``check-config`` and ``run`` to
point out.

The docs say tokens and passwords come from the environment (``${VAR}``), never from
the file: a config file gets committed, copied into images and attached to support
tickets. A literal one still works (refusing it would break every quick test), so this
is a note, not a problem. The raw TOML is read, before ``${VAR}`` expansion, so only
what was typed into the file is named, and never its value.

Which values are secrets is told by the key's name, the way the sections name them
(``token``, ``bot_token``, ``signing_secret``, ``password``, ``api_key``,
``webhook_url``, whose URL is itself the credential…): plugins' sections are covered too
without each declaring its secrets. So are the values of an ``agents`` table (the
hand-off's agent name → inbox token), a URL with a password in it
(``postgresql://bot:hunter2@db/botkit``), and a secret written as the default of a
reference (``"${TOKEN:-123:abc}"``), which is in the file all the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["literal_secrets", "literal_secrets_in"]

_SECRET_KEY = re.compile(r"(?:^|_)(?:token|secret|password|api_key|webhook_url)$")
_SECRET_TABLE = "agents"  # every value a secret, whatever its key (an agent's name)
# scheme://user:password@ — the password part, when there is one.
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:([^/?#@]+)@")
_REFERENCE = re.compile(r"\$\{[^}]*\}")
_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}")


def _written_out(value: str) -> bool:
    """Whether ``value`` holds text typed into the file: outside its ``${VAR}``
    references, or as a reference's default."""
    if _REFERENCE.sub("", value).strip():
        return True
    return any(default.strip() for default in _DEFAULT.findall(value))


def _is_literal_secret(key: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if _SECRET_KEY.search(key):
        return _written_out(value)
    if key == "url" or key.endswith("_url"):
        password = _URL_PASSWORD.match(value)
        return password is not None and _written_out(password.group(1))
    return False


def literal_secrets(tree: Mapping[str, Any], path: str = "") -> list[str]:
    """Key paths of the secrets written out in the parsed TOML ``tree`` (in file order),
    e.g. ``connectors.telegram.token`` or ``plugins.handoff.agents.Ana``."""
    all_secret = path.rpartition(".")[2] == _SECRET_TABLE
    found: list[str] = []
    for key, value in tree.items():
        child = f"{path}.{key}" if path else str(key)
        if isinstance(value, Mapping):
            found += literal_secrets(value, child)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    found += literal_secrets(item, f"{child}[{i}]")
        elif _is_literal_secret(str(key), value) or (
            all_secret and isinstance(value, str) and _written_out(value)
        ):
            found.append(child)
    return found


def literal_secrets_in(path: str | Path) -> list[str]:
    """``literal_secrets`` of a config file; [] when it cannot be read (its problems
    are reported by loading it)."""
    from botkit.config.loader import read_toml
    from botkit.errors import ConfigError

    try:
        return literal_secrets(read_toml(Path(path)))
    except ConfigError:
        return []
