"""Local target: a group of worker processes on one machine, resized with drain on scale-in."""
