"""An API client for the operator's own requests, configured like Kopf's.

Inside a Pod the ServiceAccount's token is used; elsewhere the kubeconfig that
``KUBECONFIG`` (or ``~/.kube/config``) names, so a test or a developer's laptop runs the
operator exactly as a cluster would, with whatever identity that file holds.
"""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config

#: Parallel requests to the API server from one operator: scale writes, Pod annotations,
#: status writes and Secret reads of many pools.
CONNECTION_POOL_SIZE = 16


async def connect(*, kubeconfig: str | None = None) -> client.ApiClient:
    """A client for the cluster the operator runs in, or the kubeconfig's cluster."""
    configuration = client.Configuration()
    named = kubeconfig is not None or bool(os.environ.get("KUBECONFIG"))
    if "KUBERNETES_SERVICE_HOST" in os.environ and not named:
        # The loader re-reads the projected token as the kubelet rotates it.
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration, try_refresh_token=True
        )
    else:
        await config.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration, persist_config=False
        )
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return client.ApiClient(configuration)
