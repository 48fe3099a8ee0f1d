"""Group sessions with seats: a class with a capacity the database never oversells."""
