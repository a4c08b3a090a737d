"""Kubernetes target: the worker Deployment, its scale subresource and pod deletion costs."""
