from kodad.domain.ids import new_id


def test_ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    ids = [new_id("s") for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("s_") and len(i) == 28 for i in ids)
