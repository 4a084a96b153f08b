"""Which Nova instances get a cache NIC (pure: settings and the instance's attributes)."""

from __future__ import annotations

from typing import Any

from oslo_utils import strutils

from cachenet.settings import Settings


def wants_cache_nic(settings: Settings, instance: Any) -> bool:
    """All instances by default; ``flavor_extra_spec`` / ``image_property`` narrow it,
    ``exclude_flavors`` / ``exclude_projects`` take some out."""
    flavor = instance.flavor
    if flavor.name in settings.exclude_flavors or flavor.flavorid in settings.exclude_flavors:
        return False
    if instance.project_id in settings.exclude_projects:
        return False
    if settings.flavor_extra_spec:
        value = (flavor.extra_specs or {}).get(settings.flavor_extra_spec)
        if not strutils.bool_from_string(value):
            return False
    if settings.image_property:
        # Nova keeps every image property, its own or not, in the instance's
        # system metadata as image_<name>; ImageMetaProps drops unknown ones.
        value = (instance.system_metadata or {}).get(f"image_{settings.image_property}")
        if not strutils.bool_from_string(value):
            return False
    return True
