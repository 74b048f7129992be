"""Latency samples and the ratios the report is made of."""

import math
import time
from dataclasses import dataclass, field


def percentile(values, p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Samples:
    """Durations in seconds of one operation."""

    name: str
    values: list = field(default_factory=list)

    def time(self, operation, *args):
        """Run `operation(*args)`, record how long it took and return its result."""
        started = time.perf_counter()
        result = operation(*args)
        self.values.append(time.perf_counter() - started)
        return result

    @property
    def p50(self) -> float:
        return percentile(self.values, 50)

    @property
    def p99(self) -> float:
        return percentile(self.values, 99)


def interleaved(operations: list, samples: int, seed) -> dict:
    """Time each (name, operation(i)) `samples` times, in a fresh random order each round, so noise
    lands on an operation and its floors alike."""
    import random

    results = {name: Samples(name) for name, _ in operations}
    order, operations = random.Random(seed), list(operations)
    for i in range(samples):
        order.shuffle(operations)
        for name, operation in operations:
            results[name].time(operation, i)
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}×" if floor else "n/a"
