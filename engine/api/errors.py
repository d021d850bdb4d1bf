"""Exceptions the CLI turns into clear one-screen messages (no traceback)."""


class DistilforgeError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(DistilforgeError):
    """The config is invalid; the message names each field, the wrong value and what is allowed."""


class PluginError(DistilforgeError):
    """A plugin raised inside a hook; names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.error = error
        super().__init__(f"plugin {plugin!r} raised in hook {hook!r}: {type(error).__name__}: {error}")


class RunLockedError(DistilforgeError):
    """Another process holds the run directory's lock."""


class ResumeRefused(DistilforgeError):
    """The run cannot be resumed as asked (changed config without --force, missing files...)."""


class StoreDamaged(DistilforgeError):
    """A committed file of a run directory no longer holds what was committed (cut, edited, lost)."""


class TeacherUnavailable(DistilforgeError):
    """Every sample a round asked for failed at the teacher: nothing was committed, the round is redone."""
