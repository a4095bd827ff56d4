"""Bash commands before they run: their syntax, and how dangerous they are."""

from kodad.bash.classify import classify, single_command
from kodad.bash.programs import CommandClass
from kodad.bash.syntax import commands_in

__all__ = ["CommandClass", "classify", "commands_in", "single_command"]
