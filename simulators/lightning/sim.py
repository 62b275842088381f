"""A running simulated Lightning network: our node, a router and neighbours.

Topology (all channels CHANNELD_NORMAL, fees 1 sat + 10 ppm per forward)::

    ours ── router ── neighbour-1
                 ├── neighbour-2
                 └── …

Our node opens a 5 M sat channel to the router with 1 M sat pushed to its side (so
we can both pay and be paid); the router opens 2 M sat to each neighbour, pushing
half. Every payment between ours and a neighbour therefore crosses the router,
which earns the forwarding fee. Every neighbour has a standing BOLT12 offer
("any" amount) we can pay with fetchinvoice + xpay, and can be paid by keysend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
from typing import Any, Literal

from .node import Faults, LightningNetwork, SimNode
from .servers import RestServer, RpcSocketServer


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A neighbour's node as a test sees it."""

    name: str
    node: SimNode
    node_id: str
    offer: str
    rpc_socket: str

    async def call(self, method: str, params: Any = None) -> dict[str, Any]:
        """Call an RPC method on the neighbour's node (in-process)."""
        return await self.node.call(method, params)


class LightningSim:
    """Handle on a running simulated network (see ``running_lightning``)."""

    def __init__(
        self,
        network: LightningNetwork,
        ours: SimNode,
        router: SimNode,
        neighbours: list[Neighbour],
        rpc_server: RpcSocketServer,
        rest: RestServer | None,
        rune: str,
    ) -> None:
        self.network = network
        self.ours = ours
        self.router = router
        self.neighbours = neighbours
        self._rpc_server = rpc_server
        self._rest = rest
        self.rune = rune

    # ------------------------------------------------------------ addresses

    @property
    def node_id(self) -> str:
        """Our node's id."""
        return self.ours.node_id

    @property
    def rpc_socket(self) -> str:
        """Path of our node's lightning-rpc socket."""
        return self._rpc_server.path

    @property
    def rest_url(self) -> str:
        """Our node's CLNRest base URL (``https://127.0.0.1:<port>``)."""
        if self._rest is None:
            raise RuntimeError("REST is not enabled")
        return self._rest.url

    @property
    def rest_port(self) -> int:
        """CLNRest port."""
        if self._rest is None:
            raise RuntimeError("REST is not enabled")
        return self._rest.port

    @property
    def cert_fingerprint(self) -> str:
        """SHA-256 of the CLNRest certificate (DER), lowercase hex, no colons."""
        if self._rest is None:
            raise RuntimeError("REST is not enabled")
        return self._rest.fingerprint

    @property
    def ca_cert_path(self) -> str:
        """The self-signed CLNRest certificate (PEM), usable as a CA file."""
        if self._rest is None:
            raise RuntimeError("REST is not enabled")
        return str(self._rest.cert_path)

    @property
    def faults(self) -> Faults:
        """The live fault knobs."""
        return self.network.faults

    def neighbour(self, name_or_id: str) -> Neighbour:
        """A neighbour by name or node id."""
        for n in self.neighbours:
            if name_or_id in (n.name, n.node_id):
                return n
        raise KeyError(name_or_id)

    # ------------------------------------------------------------ faults

    def set_no_route(self, enabled: bool = True, *, to: str | None = None) -> None:
        """Payments fail with 205 (all, or only those to node id ``to``)."""
        if to is None:
            self.faults.no_route = enabled
        elif enabled:
            self.faults.no_route_to.add(to)
        else:
            self.faults.no_route_to.discard(to)

    def set_payment_timeout(
        self, enabled: bool = True, *, after_s: float = 0.2
    ) -> None:
        """Payments hang ``after_s`` seconds then fail (210 / xpay 209)."""
        self.faults.payment_timeout = enabled
        self.faults.timeout_after_s = after_s

    def restart_mid_payment(
        self, outcome: Literal["completed", "failed"], *, downtime_s: float = 0.3
    ) -> None:
        """The next payment drops the connection; it did or did not complete."""
        self.faults.restart_mid_payment = outcome
        self.faults.restart_downtime_s = downtime_s

    def reject_runes(self, enabled: bool = True) -> None:
        """Every rune is refused (1501), as after the master secret changed."""
        self.ours.runes.reject_all = enabled

    def blacklist_rune(self, unique_id: str) -> None:
        """Refuse one rune (1503), like ``blacklistrune``."""
        self.ours.runes.blacklist.add(unique_id)

    def clear_faults(self) -> None:
        """Back to a healthy network."""
        self.network.faults = Faults()
        self.ours.runes.reject_all = False
        self.ours.runes.blacklist.clear()

    # ------------------------------------------------------------ inspection

    def balance_msat(self, node: SimNode | Neighbour, peer: SimNode | Neighbour) -> int:
        """``node``'s side of its channel with ``peer``, msat."""
        a = node.node if isinstance(node, Neighbour) else node
        b = peer.node if isinstance(peer, Neighbour) else peer
        return self.network.balance_msat(a, b)

    def received_msat(self, neighbour: Neighbour | str) -> int:
        """Total a neighbour has received over paid invoices, msat."""
        n = neighbour if isinstance(neighbour, Neighbour) else self.neighbour(neighbour)
        return sum(
            i.amount_received_msat or 0 for i in n.node.invoices if i.status == "paid"
        )

    def paid_labels(self) -> list[str]:
        """Labels of our completed payments (one entry per payment)."""
        return [sp.label or "" for sp in self.ours.sendpays if sp.status == "complete"]


@contextlib.asynccontextmanager
async def running_lightning(
    directory: str | os.PathLike[str],
    *,
    neighbours: int = 2,
    rest_port: int | None = 0,
    rpc_socket: str | os.PathLike[str] | None = None,
    network: str = "regtest",
) -> AsyncIterator[LightningSim]:
    """Start the simulated network; ``rest_port=None`` disables CLNRest.

    Every node gets a lightning-rpc socket under ``directory/<name>/<network>/``
    (ours at ``rpc_socket`` if given).
    """
    base = Path(directory)
    net = LightningNetwork(network)
    ours_dir = base / "ours" / network
    ours = net.add_node("ours", alias="HASHGRID", lightning_dir=str(ours_dir))
    router = net.add_node(
        "router", alias="ROUTER", lightning_dir=str(base / "router" / network)
    )
    net.open_channel(ours, router, 5_000_000, push_sat=1_000_000)
    others: list[SimNode] = []
    for i in range(1, neighbours + 1):
        name = f"neighbour-{i}"
        node = net.add_node(
            name, alias=f"NEIGHBOUR{i}", lightning_dir=str(base / name / network)
        )
        net.open_channel(router, node, 2_000_000, push_sat=1_000_000)
        others.append(node)

    servers: list[RpcSocketServer] = []
    rest: RestServer | None = None
    try:
        our_server = RpcSocketServer(ours, rpc_socket or ours_dir / "lightning-rpc")
        servers.append(our_server)
        for node in [router, *others]:
            servers.append(
                RpcSocketServer(node, Path(node.lightning_dir) / "lightning-rpc")
            )
        for server in servers:
            await server.start()
        if rest_port is not None:
            rest = RestServer(ours, base / "ours" / "clnrest", port=rest_port)
            await rest.start()
        rune = (await ours.call("createrune", {}))["rune"]
        hoods = []
        for node in others:
            offer = await node.call(
                "offer",
                {"amount": "any", "description": f"HashGrid energy to {node.alias}"},
            )
            assert node.rpc_path is not None
            hoods.append(
                Neighbour(node.name, node, node.node_id, offer["bolt12"], node.rpc_path)
            )
        yield LightningSim(net, ours, router, hoods, our_server, rest, rune)
    finally:
        if rest is not None:
            await rest.stop()
        await net.close()
        await asyncio.gather(*(s.close() for s in servers), return_exceptions=True)
