"""taskiq-fleet: elastic Taskiq workers scaled from Redis queue depth and in-flight work.

What users import is listed in ``__all__``; everything else is internal.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
