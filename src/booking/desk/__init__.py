"""The front-desk console at /desk: find a booking, change it in two actions, run the day."""
