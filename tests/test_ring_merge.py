"""The merge of the ring's member listings, and its memory of pages, on their own."""

from __future__ import annotations

from burrow.backends.ring_merge import Cursors, merge


def merged(lists: list[list[str]], limit: int | None = None, *open_ended: int) -> list[str]:
    complete = [i not in open_ended for i in range(len(lists))]
    return [step[0][1] for step in merge(lists, lambda k: k, limit, complete).steps]


def test_ids_that_grow_with_time_come_out_in_creation_order() -> None:
    assert merged([["01", "04", "05"], ["02", "03", "06"], []]) == [
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
    ]
    assert merged([["01", "04", "05"], ["02", "03", "06"]], limit=4) == ["01", "02", "03", "04"]


def test_each_members_own_order_is_kept() -> None:
    lists = [["c", "a"], ["b", "d"]]
    out = merged(lists)
    assert sorted(out) == ["a", "b", "c", "d"]
    for own in lists:
        assert [k for k in out if k in own] == own


def test_a_name_on_several_members_waits_for_all_and_comes_once() -> None:
    # `beta` is only on the second member, between two names both hold.
    assert merged([["zeta", "alpha"], ["zeta", "beta", "alpha"]]) == ["zeta", "beta", "alpha"]
    step = merge([["x", "y"], ["x"]], lambda k: k).steps[0]
    assert step == [(0, "x"), (1, "x")]


def test_a_stale_copy_of_a_message_holds_nothing_back_and_joins_the_first() -> None:
    lists = [["01", "05"], ["02", "03", "01"]]  # "01" rewritten on the second member
    result = merge(lists, lambda k: k, copies_wait=False)
    assert [step[0][1] for step in result.steps] == ["01", "02", "03", "05"]
    assert result.steps[0] == [(0, "01"), (1, "01")]
    assert result.consumed == [2, 3]


def test_members_that_disagree_still_list_each_name_once() -> None:
    out = merged([["a", "b", "c"], ["c", "b", "a"], ["b"]])
    assert sorted(out) == ["a", "b", "c"]


def test_a_list_that_may_hold_more_stops_the_merge_where_it_ends() -> None:
    # The first member gave a whole page: what follows it there is unknown, and may
    # come before the second member's "05".
    assert merged([["01", "02"], ["05", "06"]], 3, 0) == ["01", "02"]
    result = merge([["01", "02"], ["05", "06"]], lambda k: k, 3, [False, True])
    assert result.consumed == [2, 0]


def test_cursors_forget_the_oldest_first() -> None:
    cursors: Cursors[str, int] = Cursors(2)
    cursors.put("a", 1)
    cursors.put("b", 2)
    assert cursors.get("a") == 1  # now the most recent
    cursors.put("c", 3)
    assert (cursors.get("a"), cursors.get("b"), cursors.get("c")) == (1, None, 3)
