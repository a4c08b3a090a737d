"""The scaling engine: observed signals and a pool's policy in, a decision out. Pure: no I/O."""
