"""Companion package of *MLOps, Level by Level*.

One module per lifecycle stage (``data``, ``training``, ``workspace``, ``runner``, ...).
Importing the package does nothing: no directories, no servers, no environment changes.
"""

__version__ = "0.1.0"
