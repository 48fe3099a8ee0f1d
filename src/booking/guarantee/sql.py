"""SQL fragments shared by the guarantee's modules."""

# SQL: the booking ``b``'s current placement cannot be honoured (its staff member is off
# the rota or has time off over it, its room/chair/device is out of use - for a visit,
# those of any of its segments - or it is a seat in a class the business cancelled). "At risk" is
# ``at_risk_since IS NOT NULL AND`` this, so a booking moved by any path stops being at
# risk without its row being written again.
STILL_LOST = """
    (NOT b.is_sequence AND EXISTS (SELECT 1 FROM staff lost_st WHERE lost_st.id = b.staff_id
            AND (NOT lost_st.active
            OR EXISTS (SELECT 1 FROM time_off lost_t WHERE lost_t.staff_id = b.staff_id
                       AND tstzrange(lost_t.starts_at, lost_t.ends_at, '[)')
                           && tstzrange(b.starts_at, b.ends_at, '[)'))))
    OR NOT b.is_sequence AND EXISTS (SELECT 1 FROM resource lost_r
               WHERE lost_r.business_id = b.business_id
               AND lost_r.id = b.resource_id AND NOT lost_r.active)
    OR b.is_sequence AND EXISTS (SELECT 1 FROM booking_segment lost_g
               JOIN staff lost_gs ON lost_gs.id = lost_g.staff_id
               LEFT JOIN resource lost_gr ON lost_gr.business_id = lost_g.business_id
                    AND lost_gr.id = lost_g.resource_id
               WHERE lost_g.business_id = b.business_id AND lost_g.booking_id = b.id
               AND (NOT lost_gs.active OR NOT coalesce(lost_gr.active, true)
                    OR EXISTS (SELECT 1 FROM time_off lost_gt
                               WHERE lost_gt.staff_id = lost_g.staff_id
                               AND tstzrange(lost_gt.starts_at, lost_gt.ends_at, '[)')
                                   && tstzrange(lost_g.starts_at, lost_g.ends_at, '[)'))))
    OR EXISTS (SELECT 1 FROM session lost_s WHERE lost_s.business_id = b.business_id
               AND lost_s.id = b.session_id AND lost_s.status = 'cancelled'))
"""
