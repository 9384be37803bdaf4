"""One small exception hierarchy. The CLI maps it to exit codes and the server to HTTP statuses,
each in one place (`judge.cli.main`, `serve.errors`)."""

from __future__ import annotations


class JudgeforgeError(Exception):
    """Base of every error judgeforge raises on purpose. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1


class InputError(JudgeforgeError):
    """Bad input data: names the file and, where it applies, the 1-based line (or row) number."""

    exit_code = 2

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line, self.reason = path, line, message
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)


class ConfigError(JudgeforgeError):
    """A bad option, config key or combination of settings; the message says how to fix it."""

    exit_code = 2


class TemplateNotFound(ConfigError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown template {name!r}; known templates: {', '.join(known)}")


class TemplateError(InputError):
    """An item lacks what its template needs (a rubric, a context, a reference)."""


class TeacherError(JudgeforgeError):
    """The teacher endpoint failed in a way retries cannot fix (auth, bad model, exhausted retries)."""


class BudgetExceeded(JudgeforgeError):
    """--max-cost reached: the run stopped cleanly and can be resumed with a larger budget."""

    exit_code = 1
