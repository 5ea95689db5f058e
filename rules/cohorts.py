"""The cohort a new client joins: uniformly at random among open cohorts with room.

The random generator is passed in, so the web app uses the system generator and
tests use a seeded ``random.Random`` or a stub with a ``choice`` method.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class CohortOption:
    """A cohort reduced to what the choice reads: open or closed, and how full."""

    cohort_id: int
    is_open: bool
    # Maximum number of active enrollments, or None for no limit.
    capacity: int | None
    active_enrollments: int


def has_room(option: CohortOption) -> bool:
    """Tell whether one more active enrollment fits in the cohort."""
    if option.capacity is None:
        return True
    return option.active_enrollments < option.capacity


def eligible_cohorts(options: Iterable[CohortOption]) -> list[CohortOption]:
    """Return the open cohorts with room, ordered by cohort id."""
    eligible = [option for option in options if option.is_open and has_room(option)]
    return sorted(eligible, key=lambda option: option.cohort_id)


def choose_cohort(
    options: Iterable[CohortOption], rng: random.Random
) -> CohortOption | None:
    """Pick one eligible cohort with equal chances, or return None when none is."""
    eligible = eligible_cohorts(options)
    if not eligible:
        return None
    return rng.choice(eligible)


class SeatCounter:
    """Cohort choices for many clients at once, counting each seat as it is taken.

    Bulk enrollment chooses for a whole batch before inserting anything, so the
    counts must grow with every choice or a nearly full cohort would be overfilled.
    """

    def __init__(
        self, options_by_program: Mapping[int, Sequence[CohortOption]]
    ) -> None:
        self._options_by_program = {
            program_id: list(options)
            for program_id, options in options_by_program.items()
        }
        self._active_counts = {
            option.cohort_id: option.active_enrollments
            for options in self._options_by_program.values()
            for option in options
        }

    def take_seat(self, program_id: int, rng: random.Random) -> int | None:
        """Choose a cohort of the program, count the seat and return the cohort id."""
        options = [
            replace(option, active_enrollments=self._active_counts[option.cohort_id])
            for option in self._options_by_program.get(program_id, [])
        ]
        chosen = choose_cohort(options, rng)
        if chosen is None:
            return None

        self._active_counts[chosen.cohort_id] += 1
        return chosen.cohort_id
