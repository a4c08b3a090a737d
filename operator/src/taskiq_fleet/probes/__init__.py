"""Queue probes: read waiting work, in-flight work and task age from Redis. No Kubernetes."""
