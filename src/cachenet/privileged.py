"""The host operations that need root, and only those, behind oslo.privsep.

nova-compute and the agent run as service users. The few kernel writes port
security needs (nftables rules, a bridge port's isolated flag) go through
``net_admin``: a privsep daemon that keeps CAP_NET_ADMIN and nothing else. A
process that is not root starts it with ``sudo privsep-helper ...`` (the
README, "Running as the nova user", gives the sudoers line); a root process
(the bridge unit at boot, a root CLI) runs the entrypoints in-process.

The privileged side trusts nothing it is given: every entrypoint checks its
arguments itself, so a compromised caller can touch only cachenet's own
nftables table and the isolation flag of bridge ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sysconfig
import warnings
from collections.abc import Iterator

from oslo_config import cfg
from pyroute2.netlink.exceptions import NetlinkError

from cachenet import hostnet
from cachenet.errors import BridgeError, PrivilegeError
from cachenet.identity import linux_ifname_problem

with warnings.catch_warnings():  # oslo.privsep imports eventlet, which warns on every CLI run
    warnings.simplefilter("ignore")
    from oslo_privsep import capabilities, priv_context
    from oslo_privsep.daemon import FailedToDropPrivileges

# The one nftables table cachenet owns; apply_nft refuses text naming any other.
NFT_FAMILY = "bridge"
NFT_TABLE = "cachenet"
# Rules for thousands of ports are far below this; more is not cachenet's text.
NFT_MAX_BYTES = 4 * 1024 * 1024
NFT_CTX_OUTPUT_JSON = 1 << 4  # libnftables' output flag for nft -j

CFG_SECTION = "cachenet_privileged"
PYPATH = __name__ + ".net_admin"

net_admin = priv_context.PrivContext(
    "cachenet",
    cfg_section=CFG_SECTION,
    pypath=PYPATH,
    capabilities=[capabilities.CAP_NET_ADMIN],
)


def default_helper_path() -> str:
    """The privsep-helper installed with this Python's packages (venv or system)."""
    return os.path.join(sysconfig.get_path("scripts"), "privsep-helper")


# A fixed command line (no --config-file: the daemon needs no configuration), so
# the sudoers line can match it exactly. nova.conf's [cachenet_privileged]
# helper_command overrides it (e.g. to go through nova-rootwrap).
cfg.CONF.set_default("helper_command", f"sudo -n {default_helper_path()}", group=CFG_SECTION)


def sudoers_line(user: str, helper_path: str | None = None) -> str:
    """The sudoers rule letting ``user`` start cachenet's privsep daemon, and nothing else.

    A regular expression (sudo >= 1.9.10) so that only this context and a socket in
    a private temporary directory (how oslo.privsep makes it) are accepted.
    """
    helper = helper_path or default_helper_path()
    context = re.escape(PYPATH)
    return (
        f"{user} ALL=(root) NOPASSWD: {helper} "
        f"^--privsep_context {context} --privsep_sock_path /tmp/tmp[A-Za-z0-9_]+/privsep\\.sock$"
    )


def apply_nft(ruleset: str) -> None:
    """Apply ``ruleset`` (nft syntax, as ``nft -f -`` reads it) in one transaction.

    The text may only name cachenet's table (``NFT_FAMILY NFT_TABLE``).
    Raises BridgeError when nftables refuses it, PrivilegeError when the
    privileged daemon cannot be started.
    """
    with _privileged("nftables rules"):
        _apply_nft(ruleset)


def list_nft_table() -> str | None:
    """``nft -j list table bridge cachenet``: the table as nftables' JSON, or None
    when it does not exist. Reading nftables needs CAP_NET_ADMIN too."""
    with _privileged("reading nftables rules"):
        return _list_nft_table()  # type: ignore[no-any-return]


def set_port_isolated(ifname: str, isolated: bool) -> None:
    """Set the bridge port ``ifname``'s isolated flag (IFLA_BRPORT_ISOLATED).

    An isolated port forwards only to non-isolated ports (the uplink, the host).
    """
    with _privileged(f"isolating bridge port {ifname}"):
        _set_port_isolated(ifname, isolated)


@contextlib.contextmanager
def _privileged(what: str) -> Iterator[None]:
    """Runs an entrypoint in-process when this process has CAP_NET_ADMIN (root, or a
    unit's AmbientCapabilities), through the privsep daemon otherwise."""
    if net_admin.channel is None and _has_net_admin():
        net_admin.set_client_mode(False)
    try:
        yield
    except FailedToDropPrivileges as exc:
        net_admin.stop()
        raise PrivilegeError(
            f"{what} needs CAP_NET_ADMIN and the privileged helper did not start ({exc}): "
            f"run as root, or let this user run {default_helper_path()} through sudo "
            "(README, 'Running as the nova user')"
        ) from None


def _has_net_admin() -> bool:
    effective, _permitted, _inheritable = capabilities.get_caps()
    return capabilities.CAP_NET_ADMIN in effective


# --- the privileged side: these run in the daemon, with CAP_NET_ADMIN only ---------


@net_admin.entrypoint
def _apply_nft(ruleset: str) -> None:
    problem = nft_ruleset_problem(ruleset)
    if problem:
        raise BridgeError(f"refused nftables rules: {problem}")
    _run_nft(ruleset)


@net_admin.entrypoint
def _list_nft_table() -> str | None:
    try:
        return _run_nft(f"list table {NFT_FAMILY} {NFT_TABLE}", json_output=True)
    except BridgeError as exc:
        if "No such file or directory" in str(exc):
            return None
        raise


@net_admin.entrypoint
def _set_port_isolated(ifname: str, isolated: bool) -> None:
    if not isinstance(ifname, str) or linux_ifname_problem(ifname):
        raise BridgeError(f"refused interface name {ifname!r}")
    if not isinstance(isolated, bool):
        raise BridgeError(f"refused isolated flag {isolated!r}: not a boolean")
    with hostnet.route() as ipr:
        link = hostnet.find_link(ipr, ifname)
        if link is None:
            raise BridgeError(f"cannot isolate {ifname}: no such device")
        if not link.master or link.kind == "bridge":
            raise BridgeError(f"cannot isolate {ifname}: not a port of a bridge")
        try:
            ipr.brport("set", index=link.index, isolated=int(isolated))
        except NetlinkError as exc:
            raise BridgeError(f"cannot isolate {ifname}: {exc.args[-1]}") from None


def _run_nft(commands: str, json_output: bool = False) -> str:
    """``nft -f -`` (``nft -j`` with ``json_output``) in this process, through
    libnftables: no program is executed, so the rules are applied with this
    daemon's CAP_NET_ADMIN and nothing more. Returns nft's output."""
    lib = _libnftables()
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise BridgeError("cannot apply nftables rules: libnftables failed to start")
    try:
        if json_output:
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        if lib.nft_run_cmd_from_buffer(ctx, commands.encode()) != 0:
            error = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
            lines = [line.strip() for line in error.splitlines() if line.strip()]
            raise BridgeError(f"nftables refused the rules: {lines[0] if lines else 'no reason'}")
        return (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
    finally:
        lib.nft_ctx_free(ctx)


_LIB: ctypes.CDLL | None = None


def _libnftables() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError:
            raise BridgeError(
                "cannot apply nftables rules: libnftables is not installed "
                "(Debian package nftables)"
            ) from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        for name in ("nft_ctx_get_error_buffer", "nft_ctx_get_output_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_output_set_flags.restype = None
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_free.restype = None
        _LIB = lib
    return _LIB


# --- what the privileged side accepts ---------------------------------------------

# Commands that name a table right after their object keyword: VERB OBJECT FAMILY TABLE.
_VERBS = frozenset({"add", "create", "insert", "replace", "delete", "destroy", "flush"})
_OBJECTS = frozenset({"table", "chain", "rule", "set", "map", "element", "counter", "quota"})
_TOKEN = re.compile(r'"[^"\n]*"|[{};\n]|[^\s{};"]+')


def nft_ruleset_problem(ruleset: object) -> str | None:
    """Why ``ruleset`` is not text that touches only cachenet's table, or None.

    Accepted, one per line or ';'-separated: ``table bridge cachenet { ... }`` and
    ``VERB OBJECT bridge cachenet ...`` (e.g. ``add element bridge cachenet ports
    { ... }``, ``delete table bridge cachenet``). Refused: another table or family,
    a table without its family, ``flush ruleset``, ``include``, ``define``, anything else.
    """
    if not isinstance(ruleset, str):
        return "not text"
    if len(ruleset.encode("utf-8", "surrogatepass")) > NFT_MAX_BYTES:
        return f"more than {NFT_MAX_BYTES} bytes"
    try:
        statements = _top_level_statements(ruleset)
    except ValueError as exc:
        return str(exc)
    for tokens in statements:
        problem = _statement_problem(tokens)
        if problem:
            return f"{problem} (in {' '.join(tokens[:6])!r})"
    return None


def _top_level_statements(ruleset: str) -> list[list[str]]:
    """The ruleset's top-level commands as token lists, comments dropped; raises
    ValueError on unbalanced braces or an unterminated string."""
    text = "\n".join(_without_comment(line) for line in ruleset.splitlines())
    if text.count('"') % 2:
        raise ValueError("unterminated string")
    statements: list[list[str]] = []
    current: list[str] = []
    depth = 0
    for token in _TOKEN.findall(text):
        if token == "include" or token == "define":
            raise ValueError(f"{token!r} is not allowed")
        if token in ("\n", ";") and depth == 0:
            if current:
                statements.append(current)
            current = []
            continue
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced '}'")
        if token != "\n":
            current.append(token)
    if depth:
        raise ValueError("unbalanced '{'")
    if current:
        statements.append(current)
    return statements


def _without_comment(line: str) -> str:
    in_string = False
    for position, char in enumerate(line):
        if char == '"':
            in_string = not in_string
        elif char == "#" and not in_string:
            return line[:position]
    return line


def _statement_problem(tokens: list[str]) -> str | None:
    if tokens[0] == "table":
        named = tokens[1:3]
    elif tokens[0] in _VERBS and len(tokens) > 1 and tokens[1] in _OBJECTS:
        named = tokens[2:4]
    else:
        return "only commands on cachenet's table are allowed"
    if named != [NFT_FAMILY, NFT_TABLE]:
        return f"only table {NFT_FAMILY} {NFT_TABLE} may be named"
    return None
