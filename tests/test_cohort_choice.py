"""The random cohort choice: which cohorts qualify, uniformity, injected chance."""

from __future__ import annotations

import random
from collections import Counter

from rules.cohorts import CohortOption, SeatCounter, choose_cohort, eligible_cohorts

# Critical value of the chi-square distribution with 2 degrees of freedom at a
# significance level of 0.001: -2 * ln(0.001) = 13.8155 (exact for df=2).
CHI_SQUARE_CRITICAL_DF2_P001 = 13.8155


def option(cohort_id, *, is_open=True, capacity=None, active=0):
    return CohortOption(
        cohort_id=cohort_id,
        is_open=is_open,
        capacity=capacity,
        active_enrollments=active,
    )


def chi_square(counts, expected):
    return sum((observed - expected) ** 2 / expected for observed in counts)


def test_eligible_skips_closed_and_full():
    options = [
        option(4, is_open=False),
        option(3, capacity=2, active=2),
        option(2, capacity=2, active=1),
        option(1),
    ]

    ids = [choice.cohort_id for choice in eligible_cohorts(options)]

    assert ids == [1, 2]


def test_capacity_none_is_unlimited():
    chosen = choose_cohort([option(7, capacity=None, active=10**6)], random.Random(1))

    assert chosen is not None
    assert chosen.cohort_id == 7


def test_capacity_zero_never_qualifies():
    assert choose_cohort([option(1, capacity=0)], random.Random(1)) is None


def test_no_cohort_qualifies_returns_none():
    options = [option(1, is_open=False), option(2, capacity=1, active=1)]

    assert choose_cohort(options, random.Random(1)) is None
    assert choose_cohort([], random.Random(1)) is None


def test_choice_is_uniform_chi_square():
    rng = random.Random(20240601)
    options = [option(10), option(20, capacity=100_000), option(30)]
    draws = 30_000

    counts = Counter(choose_cohort(options, rng).cohort_id for _ in range(draws))

    assert set(counts) == {10, 20, 30}
    statistic = chi_square(counts.values(), draws / 3)
    assert statistic < CHI_SQUARE_CRITICAL_DF2_P001, counts


def test_chi_square_detects_biased_choice():
    # The statistic must be able to fail: a chooser favouring the first cohort
    # one time in ten is far beyond the critical value at this sample size.
    rng = random.Random(20240601)
    options = eligible_cohorts([option(10), option(20), option(30)])
    draws = 30_000

    counts = Counter()
    for _ in range(draws):
        biased = options[0] if rng.random() < 0.1 else rng.choice(options)
        counts[biased.cohort_id] += 1

    assert chi_square(counts.values(), draws / 3) > CHI_SQUARE_CRITICAL_DF2_P001


def test_input_order_does_not_matter():
    forward = [option(1), option(2), option(3)]
    backward = list(reversed(forward))

    first = choose_cohort(forward, random.Random(5))
    second = choose_cohort(backward, random.Random(5))

    assert first == second


class PickLast:
    """A stand-in generator that always picks the last candidate."""

    def choice(self, candidates):
        return candidates[-1]


def test_injected_generator_decides():
    options = [option(3), option(1), option(2, is_open=False)]

    chosen = choose_cohort(options, PickLast())

    assert chosen.cohort_id == 3


def test_seed_gives_same_sequence():
    options = [option(1), option(2), option(3)]

    first = [choose_cohort(options, random.Random(42)).cohort_id for _ in range(5)]
    second = [choose_cohort(options, random.Random(42)).cohort_id for _ in range(5)]

    assert first == second


def test_seat_counter_fills_capacity():
    counter = SeatCounter(
        {1: [option(11, capacity=2, active=1), option(12, capacity=1)]}
    )
    rng = random.Random(3)

    seats = [counter.take_seat(1, rng) for _ in range(4)]

    assert sorted(seats[:2]) == [11, 12]
    assert seats[2:] == [None, None]


def test_seat_counter_unknown_program():
    counter = SeatCounter({1: [option(11)]})

    assert counter.take_seat(2, random.Random(1)) is None


def test_seat_counter_unlimited_cohort():
    counter = SeatCounter({1: [option(11, capacity=None)]})
    rng = random.Random(1)

    seats = {counter.take_seat(1, rng) for _ in range(50)}

    assert seats == {11}
