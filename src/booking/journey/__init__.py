"""The customer journey: one timeline per booking, feedback after the visit, and the
business's journey metrics, all read from the tables the other features already write.

* ``timeline``   one booking's touchpoints in time order (history, SMS and their Twilio
                 statuses, partner webhook deliveries, offers, waitlist, promises, feedback)
* ``schemas``    the response shapes
* ``controllers`` HTTP: ``GET /v1/bookings/{id}/journey``
"""
