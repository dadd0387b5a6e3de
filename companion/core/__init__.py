"""The ground of the companion: helpers every stage may import, and that import no stage.

- :mod:`companion.core.checks`: argument and frame checks that name the bad value and what
  is accepted.
- :mod:`companion.core.env`: the offline, telemetry-free environment and the one way to
  quiet a library's logs and console output.
- :mod:`companion.core.files`: atomic writes and file digests.
- :mod:`companion.core.provenance`: the code version of a run, from the bytes of its modules.
- :mod:`companion.core.process`: start, health-check and stop a server process.

Errors live one level up, in :mod:`companion.errors`, because readers catch them.
"""
