"""Reading options out of oslo.config, one problem message per bad value (shared by areas).

oslo.config types each value (``choices``, ``min``, ``max``, ``IPOpt``...); what it
refuses, and what it lets through but no option can use (control characters,
huge text, an empty number), becomes one message naming the option. Each area
module then parses the values it owns into its frozen value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import Any

from oslo_config import cfg, types

from cachenet.identity import linux_ifname_problem, shown

GROUP = "cachenet"
TEXT_MAX = 4096  # any string option (PATH_MAX); longer is a pasting accident

# The options' values as oslo.config typed them, by option name; None where reading failed.
Values = dict[str, Any]


def read_options(conf: cfg.ConfigOpts, opts: Sequence[cfg.Opt], problems: list[str]) -> Values:
    """Every option's value as oslo.config types it; None where that failed (a problem)."""
    values: Values = {}
    for opt in opts:
        try:
            value = conf[GROUP][opt.dest]
        except (cfg.ConfigFileValueError, ValueError) as exc:
            problems.append(_typed_value_problem(conf, opt, exc))
            values[opt.dest] = None
            continue
        problem = _untyped_value_problem(conf, opt, value)
        if problem:
            problems.append(problem)
            value = None
        values[opt.dest] = value
    return values


def all_read(values: Values, opts: Sequence[cfg.Opt]) -> bool:
    """Whether every option of ``opts`` with a default was read: None there means
    oslo.config refused the value (already a problem), so no area value is built."""
    return all(values[opt.dest] is not None for opt in opts if opt.default is not None)


class Area:
    """Mixin of the frozen area values: their fields shown under the options' names
    (a field named otherwise than its option says so: ``field(metadata={"option": ...})``)."""

    def public_items(self) -> Iterator[tuple[str, object]]:
        """(option name, value as plain text, number, bool or list) for each option;
        once for fields read from one option (``subnet``: IPv4 subnets, IPv6 prefixes)."""
        shown: set[str] = set()
        for f in fields(self):  # type: ignore[arg-type]  # every Area is a dataclass
            name = f.metadata.get("option", f.name)
            if name in shown:
                continue
            shown.add(name)
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [str(v) for v in value]
            elif value is not None and not isinstance(value, bool | int | str):
                value = str(value)
            yield name, value


def shown_value(value: object) -> str:
    """A value quoted for a message: one line, short."""
    return shown(value, limit=60)


def check_ifname(values: Values, name: str, problems: list[str]) -> None:
    """The option ``name``, when set, must be a valid Linux interface name."""
    if values[name] is not None:
        reason = linux_ifname_problem(str(values[name]))
        if reason:
            problems.append(
                f"{name} {shown_value(values[name])} is not a valid Linux interface name: {reason}"
            )


def _typed_value_problem(conf: cfg.ConfigOpts, opt: cfg.Opt, exc: Exception) -> str:
    """One line naming ``opt`` and the value oslo.config's type refused."""
    reason = str(exc).rpartition(" is not valid: ")[2]  # drop oslo's file location preamble
    low, high = getattr(opt.type, "min", None), getattr(opt.type, "max", None)
    choices = getattr(opt.type, "choices", None)
    if choices:
        reason = "is not one of " + ", ".join(map(str, choices))
    elif reason.startswith("Should be") and low is not None and high is not None:
        reason = f"is outside {low}-{high}"
    else:
        reason = f"is not valid: {reason}"
    raw = None if opt.secret else _raw_value(conf, opt)
    if raw is None:
        return f"{opt.dest} {reason}"
    text = raw if re.fullmatch(r"-?\d{1,30}", raw) else shown_value(raw)  # numbers unquoted
    return f"{opt.dest} {text} {reason}"


def _raw_value(conf: cfg.ConfigOpts, opt: cfg.Opt) -> str | None:
    """The text a config file gave ``opt``, to show it in a message; None if unknown."""
    try:  # oslo.config has no public accessor for a value its type refuses
        namespace = conf._namespace
        if namespace is None:  # no config file parsed
            return None
        raw, _location = opt._get_from_namespace(namespace, GROUP)
    except Exception:
        return None
    return raw if isinstance(raw, str) else None


def _untyped_value_problem(conf: cfg.ConfigOpts, opt: cfg.Opt, value: object) -> str | None:
    """What oslo.config lets through: an empty number, control characters, huge text."""
    if value is None:
        location = conf.get_location(opt.dest, GROUP)
        set_by_user = getattr(getattr(location, "location", None), "is_user_controlled", False)
        if set_by_user and isinstance(opt.type, types.Integer):
            # ``mtu =`` reads as None, not as "unset": say so rather than fail later.
            return f"{opt.dest} is empty: give a number or leave the option out"
        return None
    for text in value if isinstance(value, list) else [value]:
        if not isinstance(text, str):
            continue
        quoted = "" if opt.secret else f" {shown_value(text)}"
        if len(text) > TEXT_MAX:
            return f"{opt.dest} is {len(text)} characters long, at most {TEXT_MAX}"
        if any(not ch.isprintable() for ch in text):
            return f"{opt.dest}{quoted} contains control characters"
        if isinstance(value, list) and not text.strip():
            return f"{opt.dest} has an empty item (a stray ',')"
    return None
