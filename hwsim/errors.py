"""One exception type for everything a user gave us that is wrong.

The CLI turns it into a one-line message and exit status 2; nothing else is caught there, so a
bug still shows its traceback.
"""


class InputError(ValueError):
    """Bad user input. The message names the file, the field (and line where known) and what was
    expected, e.g. ``archs/x.yaml:12: sram.banks: expected an integer >= 1, got -2``."""


def where(path, field: str, line: int | None = None) -> str:
    """Format the location prefix of an InputError message."""
    loc = str(path) if path is not None else "<input>"
    if line is not None:
        loc += f":{line}"
    return f"{loc}: {field}" if field else loc
