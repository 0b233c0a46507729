"""lambda(t): the correlation term's weight at generator iteration t (docs/method.md, "Scheduling lambda").

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
