"""Bookings: a customer's appointment, from hold to completion.

Where things live:

* ``policy``      the change policy: the one place that decides book/change/cancel; no I/O
* ``status``      the status machine: statuses, the active set, transitions; no I/O
* ``checks``      checks on a request before anything is written (times, channel, access)
* ``store``       the one module that writes booking rows, history and outbox entries
* ``references``  reference codes
* ``placing``     new bookings: candidate staff, the service context, "taken" answers
* ``holds``       holds: create, confirm, release, expire
* ``transitions`` status changes (confirm, cancel, check in, complete, no-show)
* ``changes``     ticket changes (another time, member of staff or service)
* ``queries``     reading bookings, history, the counter's reference lookup
* ``controllers`` / ``schemas``  HTTP
"""
