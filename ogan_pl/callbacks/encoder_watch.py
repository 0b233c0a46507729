"""The encoder's watchdog: `best_encoder.ckpt` by a label-free rule, and one warning when the encoder
falls far below its best (docs/outputs.md, "The encoder's watchdog")."""

import logging
import math
from pathlib import Path
from typing import Annotated

import torch
from pydantic import Field

from ogan_pl.callbacks.work import TimedWork
from ogan_pl.checkpoints import read_checkpoint
from ogan_pl.metrics.health import LABEL_FREE
from ogan_pl.registry.values import NonNegativeInt, PositiveFinite, checked_arguments, finite, one_of
from ogan_pl.utils.stopping import deferred

log = logging.getLogger(__name__)

ON_ALARM = ("warn", "stop", "rollback")
BEST_NAME = "best_encoder.ckpt"


@checked_arguments("callbacks.encoder_watch")
class EncoderWatch(TimedWork):
    """Reads the health scores of the metrics callback that computes `health` (at its cadence and at the
    end) and:

    - keeps `best_encoder.ckpt` beside last.ckpt: the weights with the best `measure` so far
      (a label-free health score; its direction is the metric's);
    - from generator iteration `after` on (earlier, the health of a young encoder swings widely),
      raises the alarm once, when `measure` is worse than its best by more than `margin`, or
      health/diversity is below `collapse` times its value at the best: one warning line naming the
      iteration, the measure and best_encoder.ckpt. Then `on_alarm`: warn (go on), stop (end the run
      as a finished one, last.ckpt written), or rollback (E, G, their averages and the optimizers back
      to best_encoder.ckpt, the learning rates times `rollback_lr_factor`, the iteration counter going
      on; the alarm is re-armed)."""

    label = "encoder watch"

    def __init__(
        self,
        dirpath: str,
        measure: one_of(LABEL_FREE, "the label-free health scores") = "health/recon_ratio",
        margin: PositiveFinite = 0.1,
        collapse: finite(0, below=1, note="0: off") = 0.5,
        after: NonNegativeInt = 2000,
        on_alarm: one_of(ON_ALARM) = "warn",
        rollback_lr_factor: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, description="in (0, 1]")] = 0.5,
    ):
        self.dirpath = Path(dirpath)
        self.measure = measure
        self.margin = float(margin)
        self.collapse = float(collapse)
        self.after = after
        self.on_alarm = on_alarm
        self.rollback_lr_factor = float(rollback_lr_factor)
        self.higher_is_better = False  # set from the metric that computes `measure`
        self.best: float | None = None
        self.best_g_iter = -1
        self.best_diversity: float | None = None
        self.alarms: list[int] = []  # the iterations of the alarms
        self.armed = True  # an alarm sounds once, and again only after a rollback
        self.rollbacks = 0
        self.active = False  # set up for a run whose health is computed and whose loss trains an encoder

    @property
    def best_path(self) -> Path:
        return self.dirpath / BEST_NAME

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.active = False
        sources = [cb for cb in trainer.callbacks if hasattr(cb, "metric_set") and "health" in cb.metric_set.names]
        if not sources:
            if trainer.is_global_zero:
                log.warning(
                    "the encoder is not watched: no metrics callback computes `health` (callbacks.quality "
                    "does by default); no best_encoder.ckpt will be kept"
                )
            return
        if not getattr(pl_module.objective, "trains_encoder", True):
            if trainer.is_global_zero:
                log.info(
                    "the encoder is not watched: E's correlation weight is 0 (loss.corr_weight=0 or "
                    "loss.corr_factor_e=0): the plain GAN trains no encoder"
                )
            return
        self.active = True
        self.higher_is_better = not sources[0].metric_set.lower_is_better(self.measure)

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.higher_is_better else value < than

    def _fallen(self, value: float) -> bool:
        return (self.best - value if self.higher_is_better else value - self.best) > self.margin

    def on_scores(self, trainer, pl_module, scores: dict | None) -> None:
        """Called by the metrics callback on every rank after each scoring (`scores` on rank 0)."""
        if not self.active:
            return
        decision = None
        if trainer.is_global_zero and scores and self.measure in scores:
            decision = self._judge(pl_module.g_iter, float(scores[self.measure]), scores.get("health/diversity"))
        decision = trainer.strategy.broadcast(decision, src=0)
        if decision is None:
            return
        if trainer.is_global_zero:  # in the run's result.json and the sweep summary
            trainer.callback_metrics.update(
                {
                    "encoder_watch/best": torch.tensor(self.best),
                    "encoder_watch/best_g_iter": torch.tensor(float(self.best_g_iter)),
                    "encoder_watch/alarms": torch.tensor(float(len(self.alarms))),
                }
            )
        with self.working(stoppable=False):
            if decision["improved"]:
                with deferred():
                    trainer.save_checkpoint(self.best_path, weights_only=False)
            if decision["alarm"]:
                self._act(trainer, pl_module)

    def _judge(self, g_iter: int, value: float, diversity: float | None) -> dict:
        if not math.isfinite(value):
            value = -math.inf if self.higher_is_better else math.inf
        improved = self.best is None or self._better(value, self.best)
        if improved:
            self.best, self.best_g_iter, self.best_diversity = value, g_iter, diversity
        alarm = False
        if not improved and self.armed and g_iter >= self.after:
            collapsed = (
                self.collapse > 0
                and diversity is not None
                and self.best_diversity is not None
                and diversity < self.collapse * self.best_diversity
            )
            if self._fallen(value) or collapsed:
                alarm, self.armed = True, False
                self.alarms.append(g_iter)
                what = (
                    f"{self.measure} {value:.4g} (best {self.best:.4g} at iteration {self.best_g_iter})"
                    if self._fallen(value)
                    else f"health/diversity {diversity:.4g} (at the best: {self.best_diversity:.4g})"
                )
                log.warning(
                    "the encoder's health fell at generator iteration %d: %s; the best encoder is kept "
                    "in %s (on_alarm=%s)",
                    g_iter,
                    what,
                    self.best_path,
                    self.on_alarm,
                )
        return {"improved": improved, "alarm": alarm}

    def _act(self, trainer, pl_module) -> None:
        if trainer.should_stop or pl_module.g_iter >= pl_module.total_steps:
            return  # the end-of-run scoring: training is over, the warning is all there is to do
        if self.on_alarm == "stop":
            trainer.should_stop = True
        elif self.on_alarm == "rollback":
            self.rollback(trainer, pl_module)

    def rollback(self, trainer, pl_module) -> None:
        """E, G, EMA, head and optimizer states from best_encoder.ckpt; lower rates; counter kept."""
        checkpoint = read_checkpoint(self.best_path).contents
        pl_module.load_state_dict(checkpoint["state_dict"])
        for opt, state in zip(trainer.optimizers, checkpoint["optimizer_states"], strict=True):
            opt.load_state_dict(state)
        pl_module.lr_scale *= self.rollback_lr_factor
        pl_module._lr_factor = None  # the rates are set again at the next iteration
        self.rollbacks += 1
        self.armed = True
        if trainer.is_global_zero:
            log.warning(
                "rolled back to the encoder of generator iteration %d; learning rates now x%g",
                self.best_g_iter,
                pl_module.lr_scale,
            )

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_g_iter": self.best_g_iter,
            "best_diversity": self.best_diversity,
            "alarms": list(self.alarms),
            "armed": self.armed,
            "rollbacks": self.rollbacks,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
        self.best_g_iter = int(state_dict.get("best_g_iter", -1))
        self.best_diversity = state_dict.get("best_diversity")
        self.alarms = [int(g) for g in state_dict.get("alarms", [])]
        self.armed = bool(state_dict.get("armed", True))
        self.rollbacks = int(state_dict.get("rollbacks", 0))


def watch_of(trainer) -> EncoderWatch | None:
    return next((cb for cb in trainer.callbacks if isinstance(cb, EncoderWatch)), None)
