"""Staff calendars (issue 13): feeds out, busy times in, optional CalDAV write-back."""
