"""Functions of the generator iteration t: lambda(t), the correlation term's weight (docs/method.md,
"Scheduling lambda"), and the learning rates' decay (LRSchedule below, "The learning rates' decay").

    warm-up   r(t) = min(1, t / N)                       linear
              r(t) = (1 - cos(pi * min(1, t / N))) / 2   cosine
    every k   w(t) = k if t % k == 0 else 0               (StyleGAN2's lazy-regularization scaling:
                                                           the same lambda on average)
    lambda(t) = lambda * r(t) * w(t)

A pure function of t, which a checkpoint stores: a resumed run gets the same weights as an
uninterrupted one. The E updates of iteration t and its G update share lambda(t).
"""

import math

WARMUP_SHAPES = ("linear", "cosine")


class CorrSchedule:
    def __init__(self, weight: float, warmup: int = 0, shape: str = "linear", every: int = 1):
        self.weight, self.warmup, self.shape, self.every = float(weight), int(warmup), shape, int(every)

    @property
    def constant(self) -> bool:
        return self.warmup == 0 and self.every == 1

    def ramp(self, t: int) -> float:
        if t >= self.warmup:
            return 1.0
        r = t / self.warmup
        return r if self.shape == "linear" else 0.5 * (1.0 - math.cos(math.pi * r))

    def __call__(self, t: int) -> float:
        if t % self.every:
            return 0.0
        return self.weight * self.every * self.ramp(t)


DECAY_SHAPES = ("none", "linear", "cosine")


class LRSchedule:
    """The learning rates' factor at generator iteration t of a run of T iterations:

        u(t) = clamp((t - start T) / ((1 - start) T), 0, 1)      the fraction of the decay done
        f(t) = 1 - (1 - final) u(t)                              linear
        f(t) = final + (1 - final) (1 + cos(pi u(t))) / 2        cosine
        f(t) = 1                                                 none

    Each optimizer's rate at t is its configured rate times f(t): a pure function of the stored
    iteration, like lambda(t), so a resumed run learns at the rates of an uninterrupted one."""

    def __init__(self, shape: str = "none", start: float = 0.5, final: float = 0.1, total: int = 1):
        self.shape, self.start, self.final, self.total = shape, float(start), float(final), int(total)

    @property
    def constant(self) -> bool:
        return self.shape == "none" or self.final == 1.0

    def __call__(self, t: int) -> float:
        if self.shape == "none":
            return 1.0
        begin = self.start * self.total
        u = min(1.0, max(0.0, (t - begin) / max(self.total - begin, 1e-9)))
        if self.shape == "linear":
            return 1.0 - (1.0 - self.final) * u
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * u))
