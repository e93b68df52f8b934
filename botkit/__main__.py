"""``python -m botkit`` is the ``botkit`` command."""

from botkit.cli import console

console()
