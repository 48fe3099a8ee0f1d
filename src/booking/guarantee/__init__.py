"""The appointment guarantee: reschedule offers on lost slots, the earlier-slot waitlist,
promises with due times, and the front desk's view of what is at risk."""
