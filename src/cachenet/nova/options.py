"""Options only nova-compute reads: which instances get a cache NIC, and what a spawn
does when the store is down. Registered where Nova runs (cachenet's driver), never by
the ``cachenet`` command, the agent or ``dhcp serve``.

Pure (oslo.config only): the driver imports Nova, this module does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oslo_config import cfg

from cachenet.errors import ConfigError
from cachenet.settings import GROUP, Settings, parse_settings
from cachenet.settings.reading import Area, Values, all_read, read_options, shown_value

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "flavor_extra_spec",
        help="Only instances whose flavor has this extra spec set to true get a cache NIC "
        "(e.g. cachenet:enabled). Unset: no flavor condition.",
    ),
    cfg.StrOpt(
        "image_property",
        help="Only instances whose image has this property set to true get a cache NIC "
        "(e.g. cachenet_enabled). Unset: no image condition.",
    ),
    cfg.ListOpt(
        "exclude_flavors", default=[], help="Flavors whose instances never get a cache NIC."
    ),
    cfg.ListOpt(
        "exclude_projects", default=[], help="Projects whose instances never get a cache NIC."
    ),
    cfg.StrOpt(
        "on_store_error",
        default="fail",
        choices=[
            ("fail", "the spawn fails with a clear fault"),
            ("skip", "the instance boots without a cache NIC; an error is logged"),
        ],
        help="When the port store cannot be reached at spawn: fail (the spawn fails with a "
        "clear fault) or skip (boot without the cache NIC and log an error).",
    ),
]


@dataclass(frozen=True)
class NovaSettings(Area):
    """Which Nova instances get a cache NIC; what a spawn does without the store."""

    flavor_extra_spec: str | None
    image_property: str | None
    exclude_flavors: tuple[str, ...]
    exclude_projects: tuple[str, ...]
    on_store_error: str


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Entry point of oslo-config-generator (namespace ``cachenet.nova``, for nova.conf)."""
    return [(GROUP, OPTS)]


def register_nova_opts(conf: cfg.ConfigOpts) -> None:
    """Register the Nova-only options in the ``[cachenet]`` group of Nova's CONF."""
    conf.register_opts(OPTS, group=GROUP)


def nova_settings_from_conf(conf: cfg.ConfigOpts) -> tuple[Settings, NovaSettings]:
    """The ``[cachenet]`` group of nova.conf: the settings every process reads and the
    Nova-only ones, every problem of both in one ``ConfigError``."""
    problems: list[str] = []
    settings = parse_settings(conf, problems)
    nova = parse(read_options(conf, OPTS, problems), problems)
    if settings is None or nova is None or problems:
        raise ConfigError(problems)
    return settings, nova


def parse(v: Values, problems: list[str]) -> NovaSettings | None:
    """The Nova settings of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    for name in ("flavor_extra_spec", "image_property"):
        key = v[name]
        if key is not None and not re.fullmatch(r"\S{1,255}", str(key)):
            problems.append(
                f"{name} {shown_value(key)} is not a key (1 to 255 characters, no whitespace); "
                "leave the option out for no condition"
            )
    if len(problems) > before or not all_read(v, OPTS):
        return None
    return NovaSettings(
        flavor_extra_spec=v["flavor_extra_spec"],
        image_property=v["image_property"],
        exclude_flavors=tuple(v["exclude_flavors"]),
        exclude_projects=tuple(v["exclude_projects"]),
        on_store_error=str(v["on_store_error"]),
    )
