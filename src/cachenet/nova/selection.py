"""Which Nova instances get a cache NIC (pure: settings and the instance's attributes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_utils import strutils

from cachenet.nova.options import NovaSettings


def field(obj: Any, name: str) -> Any:
    """``obj.name`` of a Nova object, or ``obj[name]`` of the dict some Nova code passes
    instead (None when the dict has no such key)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name)


def wants_cache_nic(settings: NovaSettings, instance: Any) -> bool:
    """All instances by default; ``flavor_extra_spec`` / ``image_property`` narrow it,
    ``exclude_flavors`` / ``exclude_projects`` take some out."""
    flavor = field(instance, "flavor")
    names = {field(flavor, "name"), field(flavor, "flavorid")} if flavor is not None else set()
    if names & set(settings.exclude_flavors):
        return False
    if field(instance, "project_id") in settings.exclude_projects:
        return False
    if settings.flavor_extra_spec:
        extra_specs = (field(flavor, "extra_specs") if flavor is not None else None) or {}
        if not strutils.bool_from_string(extra_specs.get(settings.flavor_extra_spec)):
            return False
    if settings.image_property:
        # Nova keeps every image property, its own or not, in the instance's
        # system metadata as image_<name>; ImageMetaProps drops unknown ones.
        value = (field(instance, "system_metadata") or {}).get(f"image_{settings.image_property}")
        if not strutils.bool_from_string(value):
            return False
    return True
