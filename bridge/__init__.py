"""coachbridge: coaching programs for MemberPress sites on WordPress."""

__version__ = "0.1.0"
