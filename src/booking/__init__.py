"""Booking and appointment-guarantee backend.

Piccolo locates its engine through ``PICCOLO_CONF`` (default ``piccolo_conf``, a
module that exists only in a project checkout, never in an installed package or
the container). Tables look the engine up when they are defined, so every process
(``booking api``, ``worker``, ``seed``, ``key``, ``openapi``, the image's command)
would need the variable. Point it at the package's own configuration here, before
any table is imported, so no operator has to know about it; a ``PICCOLO_CONF`` set
in the environment still wins.
"""

import os

os.environ.setdefault("PICCOLO_CONF", "booking.piccolo_conf")
