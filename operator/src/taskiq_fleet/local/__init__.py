"""The one-machine driver: probes, engine and the local process group in one loop."""
