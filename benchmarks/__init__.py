"""Benchmarks of the app against the raw Azure SDK calls it needs (`make bench`).

Everything runs on one machine in one run: an in-memory Azurite, the local ADF stand-in and
the app, so every number is reported as a ratio to a floor measured in the same run.
"""
