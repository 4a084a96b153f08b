"""Nova's own libvirt driver unit tests, run against cachenet's driver.

Nova's wheel ships the unit tests of its libvirt driver. Here cachenet's
``LibvirtDriver`` takes the place of Nova's before those test modules are
imported, so every test that builds "Nova's driver" builds cachenet's, with a
port store configured: the cache NIC is really added. The tests that are
expected to differ are listed by name in expected_differences.txt; any other
failure, or a listed test that passes, fails the run (a Nova upgrade that
changes what cachenet's driver overrides shows up here).

Runs in a pytest process of its own (Nova's test package patches eventlet in):
``python -m pytest tests/nova_unit``. CACHENET_NOVA_UNIT_DRIVER=nova runs the
same tests against Nova's own driver, to tell what fails on this machine anyway;
=subclass against an empty subclass of it, to tell what subclassing alone changes.
"""

# Nova's unit test package must be imported first: it patches eventlet in and
# registers Nova's objects, which its test modules rely on at import time.
import nova.tests.unit  # noqa: F401, I001

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from nova import test as nova_test
from nova.virt import libvirt as nova_libvirt
from nova.virt.libvirt import driver as nova_libvirt_driver

from cachenet.nova import driver as cachenet_driver

DRIVER = os.environ.get("CACHENET_NOVA_UNIT_DRIVER", "cachenet")
EXPECTED_DIFFERENCES = Path(__file__).with_name("expected_differences.txt")


def _use_driver(driver_class: type) -> None:
    """Make ``nova.virt.libvirt.driver.LibvirtDriver`` ``driver_class``, a subclass of it.

    Before Nova's test modules are imported: their class-level
    ``mock.patch.object(libvirt_driver.LibvirtDriver, ...)`` decorators take
    the class when the module is imported.
    """
    nova_class = nova_libvirt_driver.LibvirtDriver
    # mock.patch.object(..., autospec=True) on a static method inherited from
    # Nova's class would see a plain function and expect a `self`; static
    # methods found in the class's own __dict__ are specced as Nova's are.
    for name, value in vars(nova_class).items():
        if isinstance(value, staticmethod) and name not in vars(driver_class):
            setattr(driver_class, name, value)
    nova_libvirt_driver.LibvirtDriver = driver_class
    nova_libvirt.LibvirtDriver = driver_class


def _keep_the_test_method() -> None:
    """Nova's cleanup deletes every public attribute of the test, the one pytest
    set for the test method included; pytest then fails every test. Keep it."""
    clear_attrs = nova_test.TestCase._clear_attrs

    def _clear_attrs(self: nova_test.TestCase) -> None:
        method = self.__dict__.get(self._testMethodName)
        clear_attrs(self)
        if method is not None:
            self.__dict__[self._testMethodName] = method

    nova_test.TestCase._clear_attrs = _clear_attrs


_keep_the_test_method()
if DRIVER == "cachenet":
    _use_driver(cachenet_driver.LibvirtDriver)
elif DRIVER == "subclass":
    _use_driver(type("LibvirtDriver", (nova_libvirt_driver.LibvirtDriver,), {}))
elif DRIVER != "nova":
    raise pytest.UsageError(
        f"CACHENET_NOVA_UNIT_DRIVER must be cachenet, nova or subclass, not {DRIVER!r}"
    )


@pytest.fixture(scope="session")
def cache_bridge() -> Iterator[str]:
    """A real Linux bridge, uniquely named, as a host running cachenet has one
    (the live-migration pre-check on the destination looks for it)."""
    name = f"cnu{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False, stderr=subprocess.DEVNULL)


@pytest.fixture(autouse=True)
def cachenet_options(tmp_path: Path, cache_bridge: str) -> None:
    """The [cachenet] group of a host with its bridge and a port store (the test's
    own), so that every domain Nova's driver renders gets a cache NIC.

    Set before Nova's setUp; Nova's configuration fixture resets it after the test.
    """
    conf = cachenet_driver.CONF
    conf.set_override("database", f"sqlite:///{tmp_path}/ports.sqlite", group="cachenet")
    conf.set_override("bridge", cache_bridge, group="cachenet")


def _expected_differences() -> dict[str, str]:
    """Test id -> why it fails, for the tests expected to fail with this DRIVER.

    Each line: ``<kind> <test id>  # reason``; kind ``nova`` fails with Nova's
    own driver on this machine too (and with the empty subclass), kind
    ``cachenet`` only with cachenet's.
    """
    expected = {}
    for line in EXPECTED_DIFFERENCES.read_text().splitlines():
        entry, _, reason = line.partition("#")
        if not entry.strip():
            continue
        kind, test_id = entry.split()
        if kind not in ("nova", "cachenet"):
            raise pytest.UsageError(f"{EXPECTED_DIFFERENCES.name}: unknown kind {kind!r}")
        if kind == "nova" or DRIVER == "cachenet":
            expected[test_id] = reason.strip() or kind
    return expected


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Listed tests must fail (strict xfail); a listed test of a collected file that
    does not exist (Nova renamed or dropped it) is an error."""
    expected = _expected_differences()
    here = Path(__file__).parent
    collected: set[str] = set()
    for item in items:
        if item.path.parent != here:
            continue
        test_id = item.nodeid.split("/")[-1]
        collected.add(test_id)
        if test_id in expected:
            item.add_marker(pytest.mark.xfail(reason=expected[test_id], strict=True))
    if config.option.keyword or config.option.markexpr or any("::" in a for a in config.args):
        return  # a selection: the list cannot be checked against it
    files = {test_id.split("::")[0] for test_id in collected}
    missing = sorted(t for t in expected if t.split("::")[0] in files and t not in collected)
    if missing:
        raise pytest.UsageError(
            f"{EXPECTED_DIFFERENCES.name} lists tests Nova no longer has: {', '.join(missing)}"
        )
