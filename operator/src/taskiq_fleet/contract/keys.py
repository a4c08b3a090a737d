"""Every Redis key, message label, Kubernetes label and annotation name we rely on.

Workers and the operator run different code, often different releases of it; they
agree through these names only. Changing one is a breaking change of the wire
contract and needs a new ``CONTRACT_VERSION``.
"""

from typing import Final

CONTRACT_VERSION: Final = 1

# --- Redis ---------------------------------------------------------------------------

KEY_PREFIX: Final = "taskiq-fleet"


def heartbeat_key(queue: str) -> str:
    """The hash holding one heartbeat field per live worker process of ``queue``.

    Field: the worker id; value: a JSON heartbeat (see ``contract.heartbeat``).
    A hash (not one key per worker) so that a probe reads a whole queue's workers
    with one ``HGETALL`` inside its pipeline, without ``SCAN``.
    """
    return f"{KEY_PREFIX}:v{CONTRACT_VERSION}:heartbeats:{queue}"


def dedup_key(dedup: str) -> str:
    """The marker that a command with this ``dedup_key`` was claimed by a worker."""
    return f"{KEY_PREFIX}:v{CONTRACT_VERSION}:dedup:{dedup}"


def session_events_key(session_id: str) -> str:
    """The Redis stream a run appends its events to, one stream per agent session."""
    return f"{KEY_PREFIX}:v{CONTRACT_VERSION}:session:{session_id}:events"


def session_cancel_key(session_id: str) -> str:
    """Set by a ``cancel`` command; a running agent checks it between steps."""
    return f"{KEY_PREFIX}:v{CONTRACT_VERSION}:session:{session_id}:cancel"


# --- Taskiq message labels -----------------------------------------------------------

#: Milliseconds since the epoch when the producer sent the task. Read by the list
#: probe from the oldest waiting message to report the oldest task's age.
LABEL_ENQUEUED_MS: Final = "fleet_enqueued_ms"

# --- Kubernetes ----------------------------------------------------------------------

API_GROUP: Final = "taskiq-fleet.dev"
API_VERSION: Final = "v1alpha1"
KIND: Final = "TaskiqWorkerPool"
PLURAL: Final = "taskiqworkerpools"

LABEL_POOL: Final = f"{API_GROUP}/pool"
ANNOTATION_PAUSED: Final = f"{API_GROUP}/paused"
ANNOTATION_POD_DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"
#: On a worker Deployment the operator owns: a hash of the Pod template it last wrote,
#: so an unchanged pool causes no write after an operator restart.
ANNOTATION_TEMPLATE_HASH: Final = f"{API_GROUP}/template-hash"

#: Environment variables the operator sets in worker pods and the middleware reads.
ENV_POD_NAME: Final = "TASKIQ_FLEET_POD_NAME"
ENV_QUEUE: Final = "TASKIQ_FLEET_QUEUE"
ENV_CAPACITY: Final = "TASKIQ_FLEET_CAPACITY"
#: Environment variables of the worker runtime that the operator sets from a pool's spec.
ENV_REDIS_URL: Final = "REDIS_URL"
ENV_DEFAULT_QUEUE: Final = "TASKIQ_DEFAULT_QUEUE"
ENV_BROKER_KIND: Final = "TASKIQ_BROKER_KIND"
ENV_CONSUMER_GROUP: Final = "TASKIQ_CONSUMER_GROUP"
#: Environment variables of the worker runtime that the local demo sets for its workers
#: and load generators: the broker and result URLs (else ``REDIS_URL``), the deterministic
#: agent's work time, and the worker's metrics port (0: off, as local workers share a host).
ENV_BROKER_URL: Final = "TASKIQ_BROKER_URL"
ENV_RESULT_BACKEND_URL: Final = "TASKIQ_RESULT_BACKEND_URL"
ENV_AGENT_WORK_MS: Final = "AGENT_WORK_MS"
ENV_WORKER_METRICS_PORT: Final = "WORKER_METRICS_PORT"
