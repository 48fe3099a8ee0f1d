"""How follow-up jobs become arq jobs (outbox.service.coalesce), without any server."""

from __future__ import annotations

from datetime import UTC, datetime

from booking.outbox.dispatch import FollowUpJob
from booking.outbox.service import COALESCE_LIMIT, coalesce


def send(n: int, request_id: str | None = None) -> FollowUpJob:
    return FollowUpJob(
        function="send_sms",
        job_id=f"sms:{n}",
        args=(f"m{n}",),
        batch_as="send_sms_batch",
        request_id=request_id,
    )


def test_batchable_follow_ups_of_one_pass_become_one_job_carrying_each_once() -> None:
    pairs = [(1, send(1, "req-a")), (2, send(2)), (2, send(2)), (3, send(3, "req-c"))]

    [group] = coalesce(pairs)

    assert group.job.function == "send_sms_batch"
    assert group.job.args == (["m1", "m2", "m3"],)
    assert group.job.kwargs == {"request_ids": {"m1": "req-a", "m3": "req-c"}}
    assert group.job.request_id is None
    assert group.keys == [1, 2, 3]
    assert group.members == 3


def test_a_batch_id_is_the_same_for_the_same_members_in_any_order() -> None:
    forwards = coalesce([(n, send(n)) for n in range(5)])
    backwards = coalesce([(n, send(n)) for n in reversed(range(5))])
    other = coalesce([(n, send(n)) for n in range(1, 6)])

    assert forwards[0].job.job_id == backwards[0].job.job_id
    assert forwards[0].job.job_id.startswith("send_sms_batch:")
    assert forwards[0].job.job_id != other[0].job.job_id


def test_a_lone_follow_up_a_deferred_one_and_other_kinds_stay_jobs_of_their_own() -> None:
    later = FollowUpJob(
        function="send_sms",
        job_id="sms:9",
        args=("m9",),
        batch_as="send_sms_batch",
        defer_until=datetime(2030, 1, 1, tzinfo=UTC),
    )
    webhook = FollowUpJob(function="deliver_webhook", job_id="wh:1", args=("d1",))

    groups = coalesce([(1, send(1)), (2, later), (3, webhook)])

    assert sorted((g.job.job_id, g.keys, g.members) for g in groups) == [
        ("sms:1", [1], 1),
        ("sms:9", [2], 1),
        ("wh:1", [3], 1),
    ]
    [alone] = [g for g in groups if g.job.job_id == "sms:1"]
    assert alone.job == send(1)


def test_more_than_the_limit_is_split_into_batches_that_cover_every_member_once() -> None:
    count = COALESCE_LIMIT * 2 + 3
    groups = coalesce([(n, send(n)) for n in range(count)])

    carried = [m for g in groups for m in (g.job.args[0] if g.members > 1 else [g.job.args[0]])]
    assert sorted(carried) == sorted(f"m{n}" for n in range(count))
    assert [g.members for g in groups] == [COALESCE_LIMIT, COALESCE_LIMIT, 3]
    assert sum(len(g.keys) for g in groups) == count


def test_a_recovery_s_batches_carry_its_run_in_their_ids() -> None:
    """The requeue cron's batches (``fresh``) never share an id with the relay's for the
    same members, nor with each other's runs; a lone follow-up is then a batch of one."""
    plain = coalesce([(n, send(n)) for n in range(3)])
    first = coalesce([(n, send(n)) for n in range(3)], fresh="requeue:1")
    again = coalesce([(n, send(n)) for n in range(3)], fresh="requeue:1")
    later = coalesce([(n, send(n)) for n in range(3)], fresh="requeue:2")
    [alone] = coalesce([(1, send(1))], fresh="requeue:1")

    assert len({plain[0].job.job_id, first[0].job.job_id, later[0].job.job_id}) == 3
    assert first[0].job.job_id == again[0].job.job_id  # one run enqueues nothing twice
    assert first[0].job.args == plain[0].job.args
    assert alone.job.function == "send_sms_batch"
    assert alone.job.args == (["m1"],)
    assert alone.job.job_id != send(1).job_id
