"""OGAN: the LightningModule that trains E and G with manual optimization.

One training step is one generator iteration: `train.n_critic` E updates on detached fakes, then
one G update with E frozen (`train.update=alternating`), or the reference code's single update
of E and G with one loss (`train.update=joint`). `self.g_iter` counts generator iterations;
everything user-facing (length, logging, checkpoints, grids) uses it. `train_iteration` is the
whole step; Lightning's `training_step` and the bench's bare loop both call it.
"""

import contextlib
import time
import warnings
from collections.abc import Callable, Mapping

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ogan_pl.checkpoints import PRETRAINED_PREFIX, Checkpoint, read_checkpoint
from ogan_pl.config.recipe import Recipe
from ogan_pl.method.augment import Augment
from ogan_pl.method.correlation import correlation
from ogan_pl.method.directions import edit_codes
from ogan_pl.method.ema import EMA
from ogan_pl.method.head import DiscriminatorHead
from ogan_pl.method.inversion import InversionResult, encoder_code, invert
from ogan_pl.method.losses import LossInputs
from ogan_pl.method.perceptual import FeatureDistance
from ogan_pl.method.schedule import LRSchedule
from ogan_pl.registry.plugins import load_plugins
from ogan_pl.utils.distributed import all_reduce_mean_
from ogan_pl.utils.errors import TrainingDiverged, UserError
from ogan_pl.utils.seeds import Stream, rank_seed

# The EMA copies are in eval mode on purpose (they are never trained).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


def optimizer_steps_per_iteration(train_cfg: Mapping) -> int:
    """Lightning counts every optimizer step in global_step: n_critic E steps + 1 G step, or the joint
    update's E and G steps."""
    return 2 if train_cfg["update"] == "joint" else int(train_cfg["n_critic"]) + 1


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """requires_grad off for `modules` (E and head during the G step): no E weight gradients are built."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class OGAN(pl.LightningModule):
    def __init__(self, recipe: Recipe):
        """A model from its checked recipe (`Recipe.of_run(config)` for a run's resolved config, or a
        checkpoint's: `OGAN.load_from_checkpoint`): its parts are the recipe's registered parts, and
        the recipe is what checkpoints store."""
        super().__init__()
        if not isinstance(recipe, Recipe):
            raise TypeError(
                "OGAN takes a checked Recipe: OGAN(Recipe.of_run(config)), or OGAN.load_from_checkpoint(path)"
            )
        config, parts = recipe.config, recipe.parts
        self.save_hyperparameters({"config": config})
        # resolved optimizer parts (their classes pickle by reference: ddp_spawn's processes get them)
        self._optimizer_parts = (parts["optim.encoder"], parts["optim.generator"])
        ogan, speed = config["ogan"], config["speed"]
        architecture = parts["model"].build()
        self.z_dim = architecture.z_dim
        self.recon_scale = float(ogan["recon_scale"])
        self.seed = int(config["seed"])
        self.update_scheme = config["train"]["update"]
        self.n_critic = int(config["train"]["n_critic"])
        optim = config["optim"]
        self.lr_schedule = LRSchedule(
            optim["decay"], optim["decay_start"], optim["decay_final"], int(config["train"]["steps"])
        )
        self.lr_scale = 1.0  # times the schedule: lowered by a watchdog rollback (stored in checkpoints)
        self._lr_factor: float | None = None  # the factor the optimizers' rates were last set to
        self.E = architecture.encoder()
        self.G = architecture.generator()
        self.head = DiscriminatorHead(ogan["disc_head"], self.z_dim)
        self.objective = parts["loss"].build()
        self.augment = parts["augment"].build() if "augment" in parts else Augment()
        decay = float(ogan["ema_decay"])
        self.E_ema = EMA(self.E, decay) if decay > 0 else None
        self.G_ema = EMA(self.G, decay) if decay > 0 else None
        self.automatic_optimization = False
        self.g_iter = 0  # generator iterations done
        self.images_seen = 0  # real images shown to E, all devices together
        self._all_finite: Tensor | None = None  # on the device: every loss so far was finite
        self._speed_mark: tuple[float, int] | None = None
        self.images_per_sec = 0.0
        self._noise_generator: torch.Generator | None = None
        self._last_penalty: Tensor | None = None
        self.channels_last_setting = speed["channels_last"]
        self.compile_networks = bool(speed["compile"])
        self.channels_last = False  # decided on the device, in on_fit_start

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, plugins=(), **kwargs):
        """OGAN from a train.py checkpoint, read through ogan_pl.checkpoints (weights-only unpickling,
        only registered parts built); `plugins`: the user's own part modules to import first."""
        if kwargs:
            raise TypeError(
                f"OGAN.load_from_checkpoint takes no {', '.join(kwargs)}: the model is rebuilt from "
                "the config stored in the checkpoint"
            )
        load_plugins(plugins)
        return cls.from_checkpoint(read_checkpoint(checkpoint_path), map_location)

    @classmethod
    def from_pretrained(cls, name: str = "digits", map_location=None) -> "OGAN":
        """A model shipped inside the package (docs/pretrained.md), read like any checkpoint."""
        return cls.load_from_checkpoint(f"{PRETRAINED_PREFIX}{name}", map_location)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, map_location: str | torch.device | None = "cpu") -> "OGAN":
        """An OGAN with a read checkpoint's weights, counters and EMA, built from its checked recipe."""
        model = cls(checkpoint.recipe)
        try:
            model.load_state_dict(checkpoint.contents["state_dict"])
        except (RuntimeError, TypeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise UserError(
                f"{checkpoint.path}: its weights do not fit the model its config describes ({first})"
            ) from None
        model.on_load_checkpoint(checkpoint.contents)
        return model.to(map_location if map_location is not None else "cpu")

    # ----------------------------------------------------------------- the discriminator
    def encode_fp32(self, x: Tensor) -> Tensor:
        """E(x), at least float32: under bf16/fp16 autocast the networks run in low precision, while
        the scores, rho and every loss are computed in float32 (a float64 model stays float64)."""
        code = self.E(x)
        return code.float() if code.dtype in (torch.float16, torch.bfloat16) else code

    def augmented(self, x: Tensor) -> Tensor:
        """A(x): the training step's augmentation (`augment`; the identity by default), drawn from the
        per-iteration generator of the noise, so a resumed run draws the same."""
        return self.augment(x, self._noise_generator)

    def discriminate(self, x: Tensor) -> Tensor:
        """D(x) = T(E(A(x))): the discriminator of the training step."""
        return self.head(self.encode_fp32(self.augmented(x)))

    def rho_code(self, fake: Tensor, code_of_augmented: Tensor) -> Tensor:
        """The code rho(z, .) reads: E(A(G(z))), already computed, or E(G(z)) (augment.rho_on=clean)."""
        return self.encode_fp32(fake) if self.augment.rho_on == "clean" else code_of_augmented

    def _logged_penalty(self, penalty: Tensor, step: int) -> Tensor:
        """The penalty of the last E update that computed it: a lazy one (loss.reg_every) is 0 on
        the updates in between, which is not what a curve of it should show."""
        if self.objective.penalty_due(step) or self._last_penalty is None:
            self._last_penalty = penalty.detach()
        return self._last_penalty

    def _noise(self, n: int) -> Tensor:
        return torch.randn(n, self.z_dim, device=self.device, generator=self._noise_generator)

    def _seed_noise(self) -> None:
        """z of this step from (seed, rank, generator iteration): ranks draw different noise, and a
        resumed run the same noise as an uninterrupted one. Seeding is host-side: no device sync."""
        if self._noise_generator is None or self._noise_generator.device != self.device:
            self._noise_generator = torch.Generator(device=self.device)
        rank = self.global_rank if self._trainer is not None else 0
        self._noise_generator.manual_seed(rank_seed(self.seed, rank, self.g_iter, Stream.NOISE))

    # ----------------------------------------------------------------- optimizers
    def configure_optimizers(self):
        """E's optimizer (E and the head) and G's, in both schemes: the joint update steps both
        after one backward pass (for elementwise optimizers this equals the reference's single
        optimizer over both networks)."""
        encoder, generator = self._optimizer_parts
        return [
            encoder.build(params=[*self.E.parameters(), *self.head.parameters()]),
            generator.build(params=list(self.G.parameters())),
        ]

    # ----------------------------------------------------------------- objectives
    # Pure functions of (x, z): the training step only adds the optimizer work around them.
    def _real_input(self, x: Tensor, step: int) -> Tensor:
        return x.detach().requires_grad_(True) if self.objective.needs_real_grad(step) else x

    def encoder_objective(self, x: Tensor, z: Tensor, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """E's loss on real x and on G(z) detached; `step` counts E updates (lazy regularization)."""
        with torch.no_grad():
            fake = self.G(z)
        x = self._real_input(x, step)
        d_real = self.discriminate(x)  # real first: BatchNorm's running statistics see real, then fake
        e_fake = self.encode_fp32(self.augmented(fake))
        d_fake = self.head(e_fake)
        code = self.rho_code(fake, e_fake)
        inputs = LossInputs(
            z=z,
            x_real=x,
            x_fake=fake,
            d_fake=d_fake,
            rho=correlation(z, code),
            disc=self.discriminate,
            real_scores=d_real,
            code_fake=code,
            step=step,
            g_iter=self.g_iter,
            generator=self._noise_generator,
        )
        loss, parts = self.objective.encoder_loss(inputs)
        if "penalty" in parts:
            parts["penalty"] = self._logged_penalty(parts["penalty"], step)
        return loss, {
            "loss_e": loss,
            "rho_e": inputs.rho.mean(),
            "d_real": inputs.d_real.mean(),
            "d_fake": inputs.d_fake.mean(),
            **parts,
        }

    def generator_objective(self, x: Tensor, z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss; call it with E frozen. D(x) of the real batch x is computed only if the loss reads it."""
        fake = self.G(z)
        e_fake = self.encode_fp32(self.augmented(fake))
        code = self.rho_code(fake, e_fake)
        rho = correlation(z, code)  # (the order of these two fixes the float rounding of E's backward)
        inputs = LossInputs(
            z=z,
            x_real=x,
            x_fake=fake.detach(),
            d_fake=self.head(e_fake),
            rho=rho,
            disc=self.discriminate,
            code_fake=code,
            g_iter=self.g_iter,
        )
        loss, parts = self.objective.generator_loss(inputs)
        return loss, {"loss_g": loss, "rho": inputs.rho.mean(), **parts}

    def joint_objective(self, x: Tensor, z: Tensor, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The reference code's single loss over E and G, with a stop-gradient copy of G(z)."""
        fake = self.G(z)
        fake_ng = fake.detach()
        fake_aug = self.augmented(fake)  # one draw of A for both copies: the "t2" term stays exactly zero
        x = self._real_input(x, step)
        e_real, e_fake, e_fake_ng = (
            self.encode_fp32(self.augmented(x)),
            self.encode_fp32(fake_aug),
            self.encode_fp32(fake_aug.detach()),
        )
        d_real, d_fake, d_fake_ng = self.head(e_real), self.head(e_fake), self.head(e_fake_ng)
        code = self.rho_code(fake, e_fake)
        code_e = rho_e = None
        if self.objective.factors_differ:  # E's own lambda: the code of G(z) detached, E's gradient alone
            code_e = self.rho_code(fake_ng, e_fake_ng)
            rho_e = correlation(z, code_e)
        inputs = LossInputs(
            z=z,
            x_real=x,
            x_fake=fake_ng,
            d_fake=d_fake_ng,
            rho=correlation(z, code),
            disc=self.discriminate,
            real_scores=d_real,
            code_fake=code,
            step=step,
            g_iter=self.g_iter,
            generator=self._noise_generator,
            rho_e=rho_e,
            code_fake_e=code_e,
        )
        loss, parts = self.objective.joint_loss(inputs, d_fake_g=d_fake)
        if "penalty" in parts:
            parts["penalty"] = self._logged_penalty(parts["penalty"], step)
        return loss, {
            "loss": loss,
            "rho": inputs.rho.mean(),
            "d_real": inputs.d_real.mean(),
            "d_fake": inputs.d_fake.mean(),
            **parts,
        }

    # ----------------------------------------------------------------- training
    def train_iteration(self, reals: Tensor, opt_e, opt_g, backward: Callable[[Tensor], None]) -> dict[str, Tensor]:
        """One generator iteration on `reals` (n_critic slices): the E update(s), then the G update
        with E frozen, or the joint update; then the EMA. The same code runs inside Lightning
        (LightningOptimizers, manual_backward) and in the bench's bare loop (plain torch)."""
        if self.channels_last:
            reals = reals.contiguous(memory_format=torch.channels_last)
        self._seed_noise()
        self._set_learning_rates(opt_e, opt_g)
        if self.update_scheme == "joint":
            loss, stats = self.joint_objective(reals, self._noise(len(reals)), step=self.g_iter)
            opt_e.zero_grad(set_to_none=True)
            opt_g.zero_grad(set_to_none=True)
            self._note_finite(loss)
            backward(loss)
            opt_e.step()
            opt_g.step()
        else:
            for k, x in enumerate(reals.split(len(reals) // self.n_critic)):
                step = self.g_iter * self.n_critic + k  # E updates before this one
                stats = self._update(opt_e, backward, *self.encoder_objective(x, self._noise(len(x)), step))
            with frozen(self.E, self.head):
                stats.update(self._update(opt_g, backward, *self.generator_objective(x, self._noise(len(x)))))
        self.g_iter += 1
        self._average_buffers()
        if self.G_ema is not None:
            self.G_ema.update(self.G, self.g_iter)
            self.E_ema.update(self.E, self.g_iter)
        return stats

    @property
    def lr_factor(self) -> float:
        """The optimizers' rates at this iteration, as a fraction of the configured ones."""
        return self.lr_schedule(self.g_iter) * self.lr_scale

    def _set_learning_rates(self, *optimizers) -> None:
        """rate = configured rate x lr_factor (host-side floats, no sync); `initial_lr` keeps the
        configured rate in the optimizer's state, as torch's schedulers do."""
        factor = self.lr_factor
        if factor == self._lr_factor:
            return
        for opt in optimizers:
            for group in getattr(opt, "optimizer", opt).param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor
        self._lr_factor = factor

    def _update(self, opt, backward, loss: Tensor, stats: dict[str, Tensor]) -> dict[str, Tensor]:
        opt.zero_grad(set_to_none=True)
        self._note_finite(loss)
        backward(loss)
        opt.step()
        return stats

    def _note_finite(self, loss: Tensor) -> None:
        """Accumulate, on the device (no sync), whether every loss so far was finite."""
        finite = torch.isfinite(loss.detach())
        self._all_finite = finite if self._all_finite is None else self._all_finite & finite

    def raise_if_diverged(self, stats: dict[str, Tensor] | None = None) -> None:
        """Stop with one line once a loss was NaN or infinite (a sync: called at log steps and before a
        checkpoint is written, so that no checkpoint holds a diverged model). Every rank calls it at
        the same step and agrees (a max over ranks), so all of them stop together."""
        if self._all_finite is None:
            return
        diverged = (~self._all_finite).float()
        if self._trainer is not None and self.trainer.world_size > 1:
            diverged = self.trainer.strategy.reduce(diverged, reduce_op="max")
        if not bool(diverged):
            return
        bad = [f"train/{k}={float(v):g}" for k, v in (stats or {}).items() if not torch.isfinite(v).all()]
        raise TrainingDiverged(
            f"training diverged: a loss became NaN or infinite by generator iteration {self.g_iter}"
            + (f" ({', '.join(bad)})" if bad else "")
            + "; it stopped there and the checkpoints written before "
            "are kept (last.ckpt is the last finite one); lower optim.lr, or check loss.corr_weight / loss.gp_weight"
        )

    def training_step(self, batch: dict, batch_idx: int) -> None:
        reals = batch["image"]
        opt_e, opt_g = self.optimizers()
        stats = self.train_iteration(reals, opt_e, opt_g, self.manual_backward)
        self.images_seen += len(reals) * self.trainer.world_size
        self._measure_speed()
        # Only on the steps loggers write (and the last): a log call costs Python time on every step.
        if self._is_log_step() or self.g_iter >= self.total_steps:
            self.raise_if_diverged(stats)
            self.log_dict(
                {f"train/{k}": v.detach() for k, v in stats.items()},
                on_step=True,
                on_epoch=False,
                batch_size=len(reals),
            )
            self._log_progress(len(reals))

    def _average_buffers(self) -> None:
        """BatchNorm running statistics differ per rank (each sees its own batch); averaging them
        keeps every rank, and so the EMA copies and the checkpoint, identical. No-op on one device."""
        if self._trainer is not None and self.trainer.world_size > 1:
            all_reduce_mean_([b for net in (self.E, self.G, self.head) for b in net.buffers() if b.is_floating_point()])

    def _is_log_step(self) -> bool:
        """The generator iterations whose metrics Lightning hands to the loggers."""
        return self.g_iter % max(1, self.trainer.log_every_n_steps) == 0

    def _measure_speed(self) -> None:
        """images/s over the last logging interval, from host-side counters (no device sync)."""
        now = time.perf_counter()
        if self._speed_mark is None:
            self._speed_mark = (now, self.images_seen)
        elif self._is_log_step():
            t0, seen0 = self._speed_mark
            self.images_per_sec = (self.images_seen - seen0) / max(now - t0, 1e-9)
            self._speed_mark = (now, self.images_seen)

    def _log_progress(self, batch_size: int) -> None:
        """x-axis and speed from host-side counters, logged as CPU tensors: no device sync.
        `step` (the x-axis of every logger) is the generator iteration just completed."""
        host = {"step": self.g_iter, "progress/kimg": self.kimg, "progress/images_per_sec": self.images_per_sec}
        schedule = getattr(self.objective, "corr_schedule", None)
        if schedule is not None and not schedule.constant:  # lambda of the iteration just done
            host["train/lambda"] = schedule(self.g_iter - 1)
        if self._lr_factor is not None and (not self.lr_schedule.constant or self.lr_scale != 1.0):
            host["train/lr_factor"] = self._lr_factor
        self.log_dict(
            {k: torch.tensor(float(v)) for k, v in host.items()}, on_step=True, on_epoch=False, batch_size=batch_size
        )

    @property
    def optimizer_steps_per_iteration(self) -> int:
        return optimizer_steps_per_iteration(self.hparams.config["train"])

    @property
    def total_steps(self) -> int:
        return int(self.hparams.config["train"]["steps"])

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0

    def on_fit_start(self) -> None:
        """Speed settings, applied on the training device (they change no value in a checkpoint)."""
        setting = self.channels_last_setting
        self.channels_last = self.device.type == "cuda" if setting == "auto" else bool(setting)
        if self.channels_last:  # in place: the optimizers keep their parameters
            self.to(memory_format=torch.channels_last)
        if self.compile_networks:
            self.E.compile()
            self.G.compile()

    def on_train_start(self) -> None:
        self._speed_mark = None
        # other randomness on the device (e.g. the data flip) differs per rank too
        torch.manual_seed(rank_seed(self.seed, self.global_rank, 0, Stream.DEVICE))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ogan"] = {"g_iter": self.g_iter, "images_seen": self.images_seen, "lr_scale": self.lr_scale}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("ogan", {})
        self.g_iter = int(state.get("g_iter", 0))
        self.images_seen = int(state.get("images_seen", 0))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self._lr_factor = None

    # ----------------------------------------------------------------- inference API
    @property
    def has_ema(self) -> bool:
        return self.G_ema is not None

    @contextlib.contextmanager
    def _inference(self, use_ema: bool):
        """(E, G) in eval mode; the live networks go back to their previous mode afterwards."""
        if use_ema and self.has_ema:
            yield self.E_ema.module, self.G_ema.module
            return
        modes = (self.E.training, self.G.training)
        self.E.eval(), self.G.eval()
        try:
            yield self.E, self.G
        finally:
            self.E.train(modes[0]), self.G.train(modes[1])

    @torch.no_grad()
    def encode(self, x: Tensor, use_ema: bool = True) -> Tensor:
        """Images in [-1, 1], (B, C, R, R) -> codes (B, z_dim)."""
        with self._inference(use_ema) as (E, _):
            return E(x.to(self.device))

    @torch.no_grad()
    def decode(self, z: Tensor, use_ema: bool = True) -> Tensor:
        """Codes or noise (B, z_dim) -> images in [-1, 1]."""
        with self._inference(use_ema) as (_, G):
            return G(z.to(self.device))

    def latent(self, x: Tensor, use_ema: bool = True) -> Tensor:
        """s * N(E(x)): the code rescaled to the noise distribution, ready for G."""
        with self._inference(use_ema) as (E, _), torch.no_grad():
            return encoder_code(E, x.to(self.device), self.recon_scale)

    def reconstruct(self, x: Tensor, use_ema: bool = True) -> Tensor:
        """x_hat = G(s * N(E(x)))."""
        return self.decode(self.latent(x, use_ema), use_ema)

    def interpolate_latents(self, z_a: Tensor, z_b: Tensor, steps: int, use_ema: bool = True) -> Tensor:
        """Decode (1 - a) z_a + a z_b for `steps` values of a in [0, 1] -> (B, steps, C, R, R)."""
        alphas = torch.linspace(0, 1, steps, device=self.device)[None, :, None]
        z = torch.lerp(z_a.to(self.device)[:, None], z_b.to(self.device)[:, None], alphas)
        images = self.decode(z.flatten(0, 1), use_ema)
        return images.view(z_a.shape[0], steps, *images.shape[1:])

    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8, use_ema: bool = True) -> Tensor:
        """From x_a to x_b through their codes -> (B, steps, C, R, R)."""
        return self.interpolate_latents(self.latent(x_a, use_ema), self.latent(x_b, use_ema), steps, use_ema)

    def invert(
        self,
        x: Tensor,
        steps: int = 100,
        lr: float = 0.1,
        init: str = "encoder",
        perceptual: str | Callable[[Tensor, Tensor], Tensor] | None = "encoder",
        perceptual_weight: float = 1.0,
        encoder_weight: float = 0.1,
        seed: int = 0,
        use_ema: bool = True,
        snapshots: tuple[int, ...] = (),
        on_snapshot: Callable[[int], None] | None = None,
    ) -> InversionResult:
        """Hybrid inversion of images x in [-1, 1] (ogan_pl.method.inversion): codes z with G(z) close
        to x, the whole batch at once on the model's device. `perceptual`: "encoder" (distances in E's
        own conv features), None, or a distance (a, b) -> (B,) such as ogan_pl.method.perceptual.LPIPS.
        `seed` fixes the random start (init="random"); the result does not depend on anything else."""
        x = x.to(self.device)
        with self._inference(use_ema) as (E, G):
            distance = FeatureDistance.of_convolutions(E) if perceptual == "encoder" else perceptual
            generator = torch.Generator(device=self.device).manual_seed(seed)
            return invert(
                G,
                E,
                x,
                self.z_dim,
                steps=steps,
                lr=lr,
                init=init,
                recon_scale=self.recon_scale,
                perceptual=distance,
                perceptual_weight=perceptual_weight,
                encoder_weight=encoder_weight,
                generator=generator,
                snapshots=snapshots,
                on_snapshot=on_snapshot,
            )

    @torch.no_grad()
    def edit(
        self, x: Tensor | None, direction: Tensor, strengths, z: Tensor | None = None, use_ema: bool = True
    ) -> Tensor:
        """G(z + a * d) for every image and strength a -> (B, S, C, R, R); z = s * N(E(x)) unless
        given (e.g. from `invert`)."""
        z = self.latent(x, use_ema) if z is None else z.to(self.device)
        codes = edit_codes(z, direction.to(self.device), torch.as_tensor(strengths, dtype=torch.float32))
        images = self.decode(codes.flatten(0, 1), use_ema)
        return images.view(*codes.shape[:2], *images.shape[1:])

    def first_layer_weight(self, use_ema: bool = True) -> Tensor:
        """The weight (out_features, z_dim) of G's first layer, the one that reads z (SeFa's input)."""
        G = self.G_ema.module if use_ema and self.has_ema else self.G
        layer = getattr(G, "fc", None)
        if not (isinstance(layer, nn.Linear) and layer.in_features == self.z_dim):
            layer = next((m for m in G.modules() if isinstance(m, nn.Linear) and m.in_features == self.z_dim), None)
        if layer is None:
            raise UserError(f"{type(G).__name__} has no linear first layer reading z; SeFa needs one")
        return layer.weight.detach()

    def sample(self, n: int, seed: int | None = None, use_ema: bool = True) -> Tensor:
        """n images from z ~ N(0, I); a seed makes them reproducible."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=generator)
        return self.decode(z, use_ema)
