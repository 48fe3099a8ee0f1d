"""Resources a service can need besides a member of staff: rooms, chairs, devices."""
