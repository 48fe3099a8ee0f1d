-- The statuses in which a booking holds its time (Python: booking.bookings.status.ACTIVE).
CREATE OR REPLACE FUNCTION booking_holds_time(p_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_status IN ('held', 'pending', 'confirmed', 'checked_in') $$
