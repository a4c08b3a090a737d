"""Kopf handlers: the operator driver wiring probes, engine and the Kubernetes target."""
