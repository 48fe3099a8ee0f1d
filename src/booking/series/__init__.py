"""Recurring series: N bookings of one service on a rule, with one series id."""
