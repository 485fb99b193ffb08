"""The one base class of the errors a shell shows to a user.

The CLI and the window each catch :class:`CatsortError` and show its ``str()`` unchanged: every
subclass is raised with a single line that names the file or folder and what is wrong.
"""


class CatsortError(Exception):
    """Something the user must know about, in one line; never a programming error."""


class FolderError(CatsortError):
    """The folder to sort cannot be used at all (missing, unreadable, a link where a folder must be, ...)."""


class FolderVanished(FolderError):
    """The folder being sorted was deleted, moved or unmounted part way: every later file would fail alike."""


class FolderBusyError(CatsortError):
    """Another catsort process holds the folder's lock."""


class ModelError(CatsortError):
    """The model or its card cannot be used; ``str()`` says which file and why."""


class FileOpError(CatsortError):
    """A single file could not be moved or copied; ``str()`` is the one-line reason."""


class InterruptedBeforeMoving(KeyboardInterrupt):
    """Ctrl-C while the run was still settling, scanning or loading the model: this run moved nothing, so
    pointing at ``--undo`` would only offer to take back an earlier run the user wanted."""


def interrupted_before_moving(root: object) -> str:
    """The stop line of a run interrupted before its first move, wherever the interrupt arrived."""
    return f"interrupted before any file was moved; nothing was changed in {root}"
