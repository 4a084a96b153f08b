"""cachenet's Nova compute driver: Nova's LibvirtDriver plus the cache NIC.

Nothing of Nova's is edited: this subclass is named in nova.conf
(``compute_driver = cachenet.LibvirtDriver``, importable as
``nova.virt.cachenet`` through ``cachenet-nova-compute``, see compute.py).

- Every path that renders a domain (spawn, rebuild, unshelve, evacuate, hard
  reboot, power on, rescue, resize/cold-migration finish and revert) goes
  through ``_get_guest_xml``: the instance's port is allocated on first use
  and the same port is used ever after, so the MAC never changes.
- Live migration carries the domain XML over, cache NIC included; Nova's VIF
  update looks every ``<interface>`` up among Neutron's ports and would fail
  on the cache NIC, so it is set aside while Nova works on the XML and put
  back, unchanged, before the migration starts.
- After a live migration Nova counts the guest's interfaces to find SR-IOV
  ports to re-attach; the cache NIC is left out of that count.
- Port security (BridgeBackend.secure_ports) follows the store's ports of this
  host: right after a port is allocated (before libvirt creates its device),
  after a domain starts, at service start, and for a port migrating in.
- Only a real delete releases the port; every other destroy keeps it.
- Every config drive built for a domain with the cache NIC (spawn, rebuild,
  unshelve, evacuate, rescue, cold migration) lists it in network_data.json,
  so cloud-init configures it on stock images; nothing else of the drive changes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import nova.conf
from nova import exception
from nova.api.metadata import base as instance_metadata
from nova.compute import task_states
from nova.network import model as network_model
from nova.virt.libvirt import driver as libvirt_driver
from oslo_log import log as logging
from oslo_service import loopingcall

from cachenet import domxml, metrics
from cachenet.bridge import backend_for, secure_host_ports
from cachenet.errors import CachenetError, DomainXMLError, SubnetExhausted
from cachenet.guest.network_data import add_cache_link
from cachenet.nova.options import NovaSettings, nova_settings_from_conf, register_nova_opts
from cachenet.nova.selection import field, wants_cache_nic
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings, Settings, register_opts
from cachenet.store import PortStore, open_store

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF
register_opts(CONF)
register_nova_opts(CONF)  # Nova's own options: only where Nova runs
T = TypeVar("T")


class CacheNetworkError(exception.BuildAbortException):  # type: ignore[misc]  # Nova is untyped
    """The instance's fault when its port cannot be had (on_store_error = fail).

    A BuildAbortException so that Nova does not reschedule: the store is shared
    by every host, another one would fail the same way.
    """

    msg_fmt = "Cache network for instance %(instance_uuid)s: %(reason)s"


def _tenant_reason(exc: CachenetError) -> str:
    """What the instance's fault says about ``exc``: nothing about the store's whereabouts."""
    if isinstance(exc, SubnetExhausted):
        return "the cache network has no free address"
    return "the port store is unavailable"


class LibvirtDriver(libvirt_driver.LibvirtDriver):  # type: ignore[misc]  # Nova is untyped
    """Nova's libvirt driver whose domains carry the instance's cache NIC."""

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        super().__init__(virtapi, read_only)
        self._cachenet_settings: tuple[Settings, NovaSettings] | None = None
        self._cachenet_store: PortStore | None = None
        self._cachenet_host = CONF.host
        self._cachenet_restorer: loopingcall.FixedIntervalLoopingCall | None = None
        self._cachenet_metrics: Any = None  # the metrics listener, when metrics_listen
        # The port each instance's last rendered domain got, by instance UUID: what
        # its config drive, built right after the domain is defined, must list.
        self._cachenet_domain_ports: dict[str, Port] = {}
        _install_config_drive_hook()

    # --- configuration and store, read once --------------------------------------

    @property
    def cachenet_settings(self) -> Settings:
        return self._cachenet_loaded()[0]

    @property
    def cachenet_nova(self) -> NovaSettings:
        """Which instances get a cache NIC; what a spawn does without the store."""
        return self._cachenet_loaded()[1]

    def _cachenet_loaded(self) -> tuple[Settings, NovaSettings]:
        if self._cachenet_settings is None:
            self._cachenet_settings = nova_settings_from_conf(CONF)
        return self._cachenet_settings

    @property
    def cachenet_store(self) -> PortStore:
        if self._cachenet_store is None:
            self._cachenet_store = open_store(self.cachenet_settings)
        return self._cachenet_store

    def init_host(self, host: str) -> None:
        # The service's host name, which CONF.host need not be.
        self._cachenet_host = host
        self.cachenet_settings  # noqa: B018 - a bad [cachenet] group stops the service at start
        super().init_host(host)
        problem = self._cache_bridge_problem()
        if problem:  # instances can still run; those with a cache NIC fail to start
            LOG.error("%s: instances with a cache NIC cannot start here", problem)
        self._secure_cache_ports()  # rules lost while the service was down (a reboot)
        self._start_restoring_cache_port_rules()
        self._start_serving_metrics()

    def _start_serving_metrics(self) -> None:
        """The port and pool metrics on ``metrics_listen``, if set. A failure is logged:
        metrics are not worth keeping nova-compute down."""
        listen = self.cachenet_settings.metrics.listen
        if listen is None or self._cachenet_metrics is not None:
            return
        try:
            self._cachenet_metrics = metrics.serve("nova", listen, self.cachenet_store)
        except CachenetError as exc:
            LOG.error("No cachenet metrics: %s", exc)

    def _start_restoring_cache_port_rules(self) -> None:
        """Reconcile port security every ``agent_reconcile_interval`` seconds, as the
        agent does on plain libvirt hosts: rules lost while nova-compute runs (an
        ovs-vswitchd restart, an ``nft flush ruleset``) come back within an interval."""
        if self._cachenet_restorer is not None:
            return
        interval = self.cachenet_settings.agent.reconcile_interval
        self._cachenet_restorer = loopingcall.FixedIntervalLoopingCall(self._secure_cache_ports)
        # _secure_cache_ports logs its own errors; anything else must not end the loop.
        self._cachenet_restorer.start(
            interval=interval, initial_delay=interval, stop_on_exception=False
        )

    def cleanup_host(self, host: str) -> None:
        if self._cachenet_restorer is not None:
            self._cachenet_restorer.stop()
            self._cachenet_restorer = None
        if self._cachenet_metrics is not None:
            self._cachenet_metrics.shutdown()
            self._cachenet_metrics.server_close()
            self._cachenet_metrics = None
        super().cleanup_host(host)

    def _cache_bridge_problem(self) -> str | None:
        """Why this host's cache bridge cannot take instances, or None."""
        settings = self.cachenet_settings
        bridge = settings.bridge.name
        try:
            exists = backend_for(settings.bridge, settings.network).status().exists
        except CachenetError as exc:
            return f"cannot check the cache bridge {bridge}: {exc}"
        if not exists:
            return (
                f"the cache bridge {bridge} does not exist on {self._cachenet_host}; "
                "run 'cachenet bridge ensure' there"
            )
        return None

    def _cache_nic(self) -> tuple[BridgeSettings, NetworkSettings]:
        """The cache NIC's bridge and network: what the domain XML and port security need."""
        return self.cachenet_settings.bridge, self.cachenet_settings.network

    # --- every rendered domain gets the cache NIC ------------------------------------

    def _get_guest_xml(
        self, context: Any, instance: Any, network_info: Any, disk_info: Any, image_meta: Any,
        *args: Any, **kwargs: Any,
    ) -> str:  # fmt: skip
        xml: str = super()._get_guest_xml(
            context, instance, network_info, disk_info, image_meta, *args, **kwargs
        )
        uuid = field(instance, "uuid")
        self._cachenet_domain_ports.pop(uuid, None)
        if not wants_cache_nic(self.cachenet_nova, instance):
            return xml
        port = self._cache_port(instance)
        if port is None:
            return xml
        self._secure_cache_ports(instance)  # the port's rules before its device exists
        with_nic = _edit_or_keep(
            xml, lambda x: domxml.add_cache_interface(x, port, *self._cache_nic()),
            "Leaving the domain without its cache NIC", instance,
        )  # fmt: skip
        if with_nic is None:
            return xml
        self._cachenet_domain_ports[uuid] = port
        return with_nic

    def _cache_port(self, instance: Any) -> Port | None:
        """The instance's port, on this host; None when the store fails and policy is skip."""
        uuid = field(instance, "uuid")
        try:
            port = self.cachenet_store.allocate(uuid, self._cachenet_host)
            if port.host != self._cachenet_host:  # resized, migrated or evacuated here
                port = self.cachenet_store.move(uuid, self._cachenet_host)
            return port
        except CachenetError as exc:
            if self.cachenet_nova.on_store_error == "skip":
                LOG.error("Booting without the cache NIC: %s", exc, instance=instance)
                return None
            LOG.error("Cannot give the instance its cache NIC: %s", exc, instance=instance)
            # The fault is the tenant's to read: the reason without the store's
            # address (host, user, database), which only the compute log has.
            # "from None": the fault's traceback would otherwise carry it too.
            raise CacheNetworkError(instance_uuid=uuid, reason=_tenant_reason(exc)) from None

    def _create_configdrive(self, context: Any, instance: Any, injection_info: Any,
                            *args: Any, **kwargs: Any) -> None:  # fmt: skip
        # Nova builds the drive's InstanceMetadata inside this method and takes no
        # network metadata from its caller. Rather than copy its body (image
        # backends, rbd import, rescue naming: all Nova's to change), the hook
        # installed in Nova's driver module adds the cache link to the
        # InstanceMetadata it builds, only for the instance named here and only
        # when its domain got the cache NIC: a link whose MAC the guest lacks
        # would make cloud-init reject the whole network config.
        port = self._cachenet_domain_ports.get(field(instance, "uuid"))
        network = self.cachenet_settings.network
        cache_link = (port, network) if port is not None else None
        token = _CONFIG_DRIVE_CACHE_LINK.set(cache_link)
        try:
            super()._create_configdrive(context, instance, injection_info, *args, **kwargs)
        finally:
            _CONFIG_DRIVE_CACHE_LINK.reset(token)

    def _create_guest(self, context: Any, xml: str, instance: Any, *args: Any,
                      **kwargs: Any) -> Any:  # fmt: skip
        # Every path that starts a domain (spawn, hard reboot, resume, rescue,
        # unrescue, resize and revert) comes here; the domain's ports now exist.
        guest = super()._create_guest(context, xml, instance, *args, **kwargs)
        self._secure_cache_ports(instance)
        return guest

    def _secure_cache_ports(self, instance: Any = None, extra: tuple[Port, ...] = ()) -> None:
        """Port security for this host's cache ports (and ``extra``); logged, never raised:
        a port left without rules forwards nothing, and the next call makes up for it."""
        try:
            changes = secure_host_ports(
                *self._cache_nic(), self.cachenet_store, self._cachenet_host, extra
            )
        except CachenetError as exc:
            LOG.error("Could not secure the cache ports: %s", exc, instance=instance)
            return
        for change in changes:
            LOG.info("Cache port security: %s", change, instance=instance)

    # --- only a delete releases the port --------------------------------------------

    # Nova checks that a driver's public methods keep ComputeDriver's parameters
    # (test_public_api_signatures): overrides repeat them, never *args/**kwargs.
    def destroy(
        self, context: Any, instance: Any, network_info: Any, block_device_info: Any = None,
        destroy_disks: bool = True, destroy_secrets: bool = True,
    ) -> None:  # fmt: skip
        super().destroy(
            context, instance, network_info, block_device_info, destroy_disks, destroy_secrets
        )
        # destroy() also runs for hard reboot, power on, rebuild, shelve offload
        # and resize revert; only ComputeManager._delete_instance sets DELETING.
        # An instance the API deleted while this host was down is reaped later
        # (running_deleted_instance_action = reap): it is already marked deleted.
        deleted = instance.obj_attr_is_set("deleted") and instance.deleted
        if instance.task_state == task_states.DELETING or deleted:
            self._release(instance)

    def _release(self, instance: Any) -> None:
        self._cachenet_domain_ports.pop(instance.uuid, None)
        try:
            port = self.cachenet_store.release(instance.uuid)
        except CachenetError as exc:
            # The instance is gone either way; the store's gc frees the port later.
            LOG.error("Could not release the cache port: %s", exc, instance=instance)
            return
        if port is not None:
            LOG.info("Released cache port %s (%s)", port.mac, port.shown_address, instance=instance)

    # --- live migration ------------------------------------------------------------

    def _live_migration_operation(
        self, context: Any, instance: Any, dest: Any, block_migration: Any, migrate_data: Any,
        guest: Any, device_names: Any,
    ) -> Any:  # fmt: skip
        return super()._live_migration_operation(
            context, instance, dest, block_migration, migrate_data,
            _GuestWithCacheNicAside(guest, instance, self.cachenet_settings), device_names,
        )  # fmt: skip

    def check_can_live_migrate_destination(
        self, context: Any, instance: Any, src_compute_info: Any, dst_compute_info: Any,
        block_migration: bool = False, disk_over_commit: bool = False,
    ) -> Any:  # fmt: skip
        # Runs on the destination: without the cache bridge the migration
        # would fail half-way in libvirt; fail its pre-check with the reason.
        if wants_cache_nic(self.cachenet_nova, instance):
            problem = self._cache_bridge_problem()
            if problem:
                raise exception.MigrationPreCheckError(reason=problem)
        return super().check_can_live_migrate_destination(
            context, instance, src_compute_info, dst_compute_info, block_migration,
            disk_over_commit,
        )  # fmt: skip

    def pre_live_migration(
        self, context: Any, instance: Any, block_device_info: Any, network_info: Any,
        disk_info: Any, migrate_data: Any,
    ) -> Any:  # fmt: skip
        # Runs on the destination before libvirt creates the domain's devices here:
        # the migrating port's rules first (its store row still names the source).
        if wants_cache_nic(self.cachenet_nova, instance):
            try:
                incoming = self.cachenet_store.get(field(instance, "uuid"))
            except CachenetError as exc:
                LOG.error("Could not secure the cache port: %s", exc, instance=instance)
                incoming = None
            if incoming is not None:
                self._secure_cache_ports(instance, extra=(incoming,))
        return super().pre_live_migration(
            context, instance, block_device_info, network_info, disk_info, migrate_data
        )

    def post_live_migration_at_destination(
        self, context: Any, instance: Any, network_info: Any, block_migration: bool = False,
        block_device_info: Any = None,
    ) -> Any:  # fmt: skip
        result = super().post_live_migration_at_destination(
            context, instance, network_info, block_migration, block_device_info
        )
        try:
            if self.cachenet_store.get(instance.uuid) is not None:
                self.cachenet_store.move(instance.uuid, self._cachenet_host)
        except CachenetError as exc:
            LOG.error("Could not move the cache port here: %s", exc, instance=instance)
        self._secure_cache_ports(instance)  # libvirt plugged its ports during the migration
        return result

    def _reattach_instance_vifs(self, context: Any, instance: Any, network_info: Any) -> None:
        """Nova's own, with the guest's interfaces counted without the cache NIC.

        After a live migration (or its rollback) Nova re-attaches the SR-IOV
        direct ports it detached before, but only when the guest has fewer
        interfaces than ``network_info`` lists: the cache NIC, which Neutron
        does not know, would make the count match and leave them detached.
        """
        guest = self._host.get_guest(instance)
        cache_nics = self._count_cache_nics(guest, instance)
        if len(guest.get_interfaces()) - cache_nics >= len(network_info):
            return
        for vif in network_info:
            if vif["vnic_type"] in network_model.VNIC_TYPES_DIRECT_PASSTHROUGH:
                LOG.info("Attaching vif %s to instance %s", vif["id"], instance.id)
                self.attach_interface(context, instance, instance.image_meta, vif)

    def _count_cache_nics(self, guest: Any, instance: Any) -> int:
        """0 or 1; 0 when the guest's XML cannot be read as a domain (Nova counts as alone)."""
        found = _edit_or_keep(
            guest.get_xml_desc(),
            lambda x: domxml.find_cache_interface(x, *self._cache_nic()),
            "Counting the interfaces as if there were no cache NIC", instance,
        )  # fmt: skip
        return 1 if found else 0


# The cache port (and settings) of the config drive being built in this thread or
# green thread; None outside cachenet's _create_configdrive.
_CONFIG_DRIVE_CACHE_LINK: contextvars.ContextVar[tuple[Port, NetworkSettings] | None] = (
    contextvars.ContextVar("cachenet_config_drive_cache_link", default=None)
)


def _instance_metadata_with_cache_link(*args: Any, **kwargs: Any) -> Any:
    """Nova's InstanceMetadata; its network_data.json with the cache link when a
    config drive for an instance with the cache NIC is being built.

    Only ``network_metadata`` changes: EC2 fixed IPs and ``local-ipv4`` come from
    ``network_info``, which stays Neutron's alone.
    """
    metadata = instance_metadata.InstanceMetadata(*args, **kwargs)
    cache_link = _CONFIG_DRIVE_CACHE_LINK.get()
    network_metadata = getattr(metadata, "network_metadata", None)
    # Nova sets a dict, or None for an instance without Neutron ports.
    if cache_link is not None and isinstance(network_metadata, dict | None):
        port, network = cache_link
        metadata.network_metadata = add_cache_link(network_metadata or {}, port, network)
    return metadata


class _InstanceMetadataModule(ModuleType):
    """``nova.api.metadata.base`` as Nova's libvirt driver module sees it, with
    ``InstanceMetadata`` wrapped; every other name is the real module's, looked up
    at each use (a test's mock of the real module's class still takes effect)."""

    InstanceMetadata = staticmethod(_instance_metadata_with_cache_link)

    def __getattr__(self, name: str) -> Any:
        return getattr(instance_metadata, name)


def _install_config_drive_hook() -> None:
    """Let the libvirt driver module build config drives through the wrapper above.

    Outside cachenet's _create_configdrive the wrapper changes nothing, so Nova's
    own driver class, if also used in this process, builds the same drives.
    """
    if not isinstance(libvirt_driver.instance_metadata, _InstanceMetadataModule):
        libvirt_driver.instance_metadata = _InstanceMetadataModule(instance_metadata.__name__)


class _GuestWithCacheNicAside:
    """The source guest as Nova's live migration code sees it.

    Its migratable XML has no cache NIC (so ``_update_vif_xml`` only meets
    Neutron's ports); ``migrate`` puts the cache NIC back, as it was (PCI
    address included, or the destination's device ABI would not match), into
    the destination XML. Everything else is the real guest, which it also
    compares equal to. XML that cannot be read as a domain passes through
    unchanged, as it would without cachenet.
    """

    def __init__(self, guest: Any, instance: Any, settings: Settings) -> None:
        self._guest = guest
        self._instance = instance
        self._settings = settings
        self._aside: list[domxml.SetAside] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guest, name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _GuestWithCacheNicAside):
            other = other._guest
        return bool(self._guest == other)

    def __hash__(self) -> int:
        return hash(self._guest)

    def get_xml_desc(self, *args: Any, **kwargs: Any) -> Any:
        xml = self._guest.get_xml_desc(*args, **kwargs)
        if not kwargs.get("dump_migratable"):
            return xml
        set_aside = _edit_or_keep(
            xml, lambda x: domxml.set_aside_cache_interfaces(
                x, self._settings.bridge, self._settings.network
            ),
            "Migrating the domain XML as it is", self._instance,
        )  # fmt: skip
        if set_aside is None:
            return xml
        xml, self._aside = set_aside
        return xml

    def migrate(self, *args: Any, destination_xml: str | None = None, **kwargs: Any) -> Any:
        if destination_xml is not None and self._aside:
            aside = self._aside
            restored = _edit_or_keep(
                destination_xml, lambda x: domxml.restore_cache_interfaces(x, aside),
                "Migrating without the cache NIC", self._instance,
            )  # fmt: skip
            destination_xml = destination_xml if restored is None else restored
        return self._guest.migrate(*args, destination_xml=destination_xml, **kwargs)


def _edit_or_keep(
    xml: Any, edit: Callable[[str | bytes], T], failing: str, instance: Any
) -> T | None:
    """``edit(xml)``; None, logged, when ``xml`` cannot be read as a domain.

    Adding the cache NIC is never worth failing an operation that Nova alone
    completes: the caller then goes on with Nova's XML, unchanged.
    """
    try:
        if not isinstance(xml, str | bytes):
            raise DomainXMLError(f"not a domain XML document but {type(xml).__name__}")
        return edit(xml)
    except DomainXMLError as exc:
        LOG.warning("%s: %s", failing, exc, instance=instance)
        return None
