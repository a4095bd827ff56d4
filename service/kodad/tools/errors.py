"""The error a tool raises for a failure the model should read and act on."""


class ToolError(Exception):
    """A tool failed in a way the model can fix (bad argument, missing file, refused path)."""
