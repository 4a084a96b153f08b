"""What a check found (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"


@dataclass(frozen=True)
class Result:
    """One check: ``status`` is OK, WARN, FAIL or SKIPPED; ``fix`` the command that
    fixes what ``message`` says is wrong (None when nothing is)."""

    name: str
    status: str
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def line(self) -> str:
        """The result as one line of ``cachenet doctor``'s output."""
        text = f"{self.status.upper():<7} {self.name:<15} {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def healthy(results: Sequence[Result]) -> bool:
    """Whether nothing failed or warned (a skipped check says why; it is no fault)."""
    return all(r.status in (OK, SKIPPED) for r in results)
