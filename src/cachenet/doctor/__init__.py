"""``cachenet doctor``: this host checked end to end, one result per check.

Each check is a small function of ``checks.py`` taking the ``Host`` (settings,
and what several checks share, read once) and returning a ``Result``: its
name, ok / warn / fail / skipped, one line saying what was found, and the
command that fixes it. A check that cannot be made (this user lacks a
privilege, something it depends on failed, it does not apply to this host)
is ``skipped`` with the reason; it does not fail the run.
"""

from __future__ import annotations

from cachenet.doctor.result import FAIL, OK, SKIPPED, WARN, Result, healthy

__all__ = ["FAIL", "OK", "SKIPPED", "WARN", "Result", "healthy"]
