"""Kopf's settings for this operator, and its logging.

Each setting below answers a failure the operator must ride out by itself: an API
server that restarts or goes silent, permissions kept to what the operator uses, and
object writes limited to what the operator owns.
"""

from __future__ import annotations

import logging
from typing import Final

import kopf

from taskiq_fleet.contract import keys

#: The API server ends a watch after this many seconds; a fresh one starts from the last
#: resourceVersion, so nothing is missed and no object is re-handled.
WATCH_SERVER_TIMEOUT_S: Final = 300
#: The client gives up on a watch a little after the server should have ended it.
WATCH_CLIENT_TIMEOUT_S: Final = 330
#: Seconds to open a connection to the API server before counting it unreachable.
CONNECT_TIMEOUT_S: Final = 10
#: Longest single request (not watch) to the API server.
REQUEST_TIMEOUT_S: Final = 30


def operator_settings(*, standalone: bool, instance: str) -> kopf.OperatorSettings:
    """Kopf's settings; ``instance`` names this operator in the Events it posts."""
    settings = kopf.OperatorSettings()
    settings.peering.standalone = standalone

    # Keep everything Kopf records on a pool under our own prefix, and out of the status
    # (which the poll loop alone writes): the CRD's schema would prune it anyway.
    settings.persistence.finalizer = f"{keys.API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=keys.API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=keys.API_GROUP, key="last-handled-configuration"
    )

    # Events come from the handlers themselves, one per change or error, never from
    # Kopf's own log lines (which would repeat them under a vague reason).
    settings.posting.level = logging.CRITICAL
    settings.posting.reporting_component = "taskiq-fleet"
    settings.posting.reporting_instance = instance

    # A vanished API server: watches time out and reconnect with backoff, requests fail
    # within a bound (the poll loops hold their replica counts meanwhile), nothing flaps.
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT_S
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT_S
    settings.watching.connect_timeout = CONNECT_TIMEOUT_S
    settings.networking.connect_timeout = CONNECT_TIMEOUT_S
    settings.networking.request_timeout = REQUEST_TIMEOUT_S

    # Least privilege: watch only the Deployments carrying the pool label, and do not scan
    # for CRDs and namespaces (which would need cluster-wide list and watch on them).
    settings.watching.label_selectors["apps", "v1", "deployments"] = keys.LABEL_POOL
    settings.scanning.disabled = True
    return settings


def configure_logging(*, log_format: str, log_level: str) -> None:
    """Text or JSON lines on stderr. At info, one line per change; Kopf's chatter at debug."""
    kopf.configure(
        debug=log_level == "debug",
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=log_format != "json",
        log_refkey="object",
    )
    level = getattr(logging, log_level.upper())
    logging.getLogger().setLevel(level)
    if level > logging.DEBUG:
        # Kopf's per-object lines ("Handler ... succeeded") repeat what ours say.
        logging.getLogger("kopf.objects").setLevel(max(level, logging.WARNING))
