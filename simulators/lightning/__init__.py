"""Simulated Core Lightning nodes: lightningd's unix-socket JSON-RPC and CLNRest.

async with running_lightning(tmp_path, neighbours=2, rest_port=0) as net:
    LightningRpc(net.rpc_socket).call("getinfo")
    # https POST {net.rest_url}/v1/getinfo with header Rune: net.rune
"""

from .node import Faults, LightningNetwork, RpcFault, SimNode
from .sim import LightningSim, Neighbour, running_lightning

__all__ = [
    "Faults",
    "LightningNetwork",
    "LightningSim",
    "Neighbour",
    "RpcFault",
    "SimNode",
    "running_lightning",
]
