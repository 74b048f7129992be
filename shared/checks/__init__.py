"""Automated checks: the calls (probe), what an answer means (expect), attempts and settling (monitor)."""
