"""OGAN: the LightningModule that trains E and G with manual optimization.

One training step is one generator iteration: `train.n_critic` E updates on detached fakes, then
one G update with E frozen (`train.update=alternating`), or the reference code's single update
of E and G with one loss and one optimizer (`train.update=joint`). `self.g_iter` counts
generator iterations; everything user-facing (length, logging, checkpoints, grids) uses it.
"""
import contextlib
import time
import warnings

import pytorch_lightning as pl
import torch
from torch import Tensor

from ogan_pl.config import optimizer_steps_per_iteration, safe_instantiate
from ogan_pl.distributed import all_reduce_mean_, rank_seed
from ogan_pl.ema import EMA
from ogan_pl.losses import correlation, standardize
from ogan_pl.models import DiscriminatorHead

# The EMA copies are in eval mode on purpose (they are never trained).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


class OGAN(pl.LightningModule):
    def __init__(self, config: dict):
        """`config` is the run's resolved config as plain containers (it is stored in checkpoints)."""
        super().__init__()
        self.save_hyperparameters()
        model = config["model"]
        self.z_dim = int(model["z_dim"])
        self.recon_scale = float(model["recon_scale"])
        self.seed = int(config["seed"])
        self.update_scheme = config["train"]["update"]
        self.n_critic = int(config["train"]["n_critic"])
        self.E = safe_instantiate(model["encoder"], name="model.encoder")
        self.G = safe_instantiate(model["generator"], name="model.generator")
        self.head = DiscriminatorHead(model["disc_head"], self.z_dim)
        self.objective = safe_instantiate(config["loss"], name="loss")
        decay = float(model["ema_decay"])
        self.E_ema = EMA(self.E, decay) if decay > 0 else None
        self.G_ema = EMA(self.G, decay) if decay > 0 else None
        self.automatic_optimization = False
        self.g_iter = 0  # generator iterations done
        self.images_seen = 0  # real images shown to E, all devices together
        self._speed_mark: tuple[float, int] | None = None
        self.images_per_sec = 0.0
        self._noise_generator: torch.Generator | None = None
        self.channels_last_setting = model.get("channels_last", False)
        self.compile_networks = bool(model.get("compile", False))
        self.channels_last = False  # decided on the device, in on_fit_start

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, weights_only: bool = True, **kwargs):
        """Load with torch's weights_only unpickler: a checkpoint cannot run code while it is loaded."""
        return super().load_from_checkpoint(checkpoint_path, map_location=map_location,
                                            weights_only=weights_only, **kwargs)

    # ----------------------------------------------------------------- the discriminator
    def encode_fp32(self, x: Tensor) -> Tensor:
        """E(x), at least float32: under bf16/fp16 autocast the networks run in low precision, while
        the scores, rho and every loss are computed in float32 (a float64 model stays float64)."""
        code = self.E(x)
        return code.float() if code.dtype in (torch.float16, torch.bfloat16) else code

    def discriminate(self, x: Tensor) -> Tensor:
        return self.head(self.encode_fp32(x))

    def _noise(self, n: int) -> Tensor:
        return torch.randn(n, self.z_dim, device=self.device, generator=self._noise_generator)

    def _seed_noise(self) -> None:
        """z of this step from (seed, rank, generator iteration): ranks draw different noise, and a
        resumed run the same noise as an uninterrupted one. Seeding is host-side: no device sync."""
        if self._noise_generator is None or self._noise_generator.device != self.device:
            self._noise_generator = torch.Generator(device=self.device)
        self._noise_generator.manual_seed(rank_seed(self.seed, self.global_rank, self.g_iter))

    # ----------------------------------------------------------------- optimizers
    def configure_optimizers(self):
        optim = self.hparams.config["optim"]
        e_params = [*self.E.parameters(), *self.head.parameters()]
        if self.update_scheme == "joint":
            make = safe_instantiate(optim["encoder"], name="optim.encoder")
            return make([{"params": e_params, "lr": optim["lr_e"]},
                          {"params": list(self.G.parameters()), "lr": optim["lr_g"]}])
        return [safe_instantiate(optim["encoder"], name="optim.encoder")(e_params),
                safe_instantiate(optim["generator"], name="optim.generator")(self.G.parameters())]

    # ----------------------------------------------------------------- objectives
    # Pure functions of (x, z): the training step only adds the optimizer work around them.
    def encoder_objective(self, x: Tensor, z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """E's loss on real x and on G(z) detached."""
        with torch.no_grad():
            fake = self.G(z)
        if self.objective.requires_real_grad:
            x = x.detach().requires_grad_(True)
        e_real, e_fake = self.encode_fp32(x), self.encode_fp32(fake)
        d_real, d_fake = self.head(e_real), self.head(e_fake)
        rho = correlation(z, e_fake)
        penalty = self.objective.penalty(self.discriminate, x, fake, d_real, d_fake)
        loss, parts = self.objective.encoder_loss(d_real, d_fake, rho, penalty)
        return loss, {"loss_e": loss, "rho_e": rho.mean(), "d_real": d_real.mean(), "d_fake": d_fake.mean(), **parts}

    def generator_objective(self, z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss; call it with E frozen."""
        e_fake = self.encode_fp32(self.G(z))
        rho = correlation(z, e_fake)
        loss, parts = self.objective.generator_loss(self.head(e_fake), rho)
        return loss, {"loss_g": loss, "rho": rho.mean(), **parts}

    def joint_objective(self, x: Tensor, z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The reference code's single loss over E and G, with a stop-gradient copy of G(z)."""
        fake = self.G(z)
        fake_ng = fake.detach()
        if self.objective.requires_real_grad:
            x = x.detach().requires_grad_(True)
        e_real, e_fake, e_fake_ng = self.encode_fp32(x), self.encode_fp32(fake), self.encode_fp32(fake_ng)
        d_real, d_fake, d_fake_ng = self.head(e_real), self.head(e_fake), self.head(e_fake_ng)
        rho = correlation(z, e_fake)
        penalty = self.objective.penalty(self.discriminate, x, fake_ng, d_real, d_fake_ng)
        loss, parts = self.objective.joint_loss(d_real, d_fake, d_fake_ng, rho, penalty)
        return loss, {"loss": loss, "rho": rho.mean(), "d_real": d_real.mean(), "d_fake": d_fake_ng.mean(), **parts}

    # ----------------------------------------------------------------- training
    def training_step(self, batch: dict, batch_idx: int) -> None:
        reals = batch["image"]
        if self.channels_last:
            reals = reals.contiguous(memory_format=torch.channels_last)
        self._seed_noise()
        if self.update_scheme == "joint":
            stats = self._optimize(self.optimizers(), *self.joint_objective(reals, self._noise(len(reals))))
        else:
            opt_e, opt_g = self.optimizers()
            for x in reals.split(len(reals) // self.n_critic):
                stats = self._optimize(opt_e, *self.encoder_objective(x, self._noise(len(x))))
            self.toggle_optimizer(opt_g)  # E and head frozen: no E weight gradients are built or stored
            stats.update(self._optimize(opt_g, *self.generator_objective(self._noise(len(reals) // self.n_critic))))
            self.untoggle_optimizer(opt_g)
        self.g_iter += 1
        self.images_seen += len(reals) * self.trainer.world_size
        self._average_buffers()
        if self.G_ema is not None:
            self.G_ema.update(self.G, self.g_iter)
            self.E_ema.update(self.E, self.g_iter)
        self._measure_speed()
        # Only on the steps loggers write (and the last): a log call costs Python time on every step.
        if self._is_log_step() or self.g_iter >= self.total_steps:
            self.log_dict({f"train/{k}": v.detach() for k, v in stats.items()},
                          on_step=True, on_epoch=False, batch_size=len(reals))
            self._log_progress(len(reals))

    def _average_buffers(self) -> None:
        """BatchNorm running statistics differ per rank (each sees its own batch); averaging them
        keeps every rank, and so the EMA copies and the checkpoint, identical. No-op on one device."""
        if self.trainer.world_size > 1:
            all_reduce_mean_([b for net in (self.E, self.G, self.head) for b in net.buffers()
                              if b.is_floating_point()])

    def _optimize(self, opt, loss: Tensor, stats: dict[str, Tensor]) -> dict[str, Tensor]:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        return stats

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
        self.log_dict({k: torch.tensor(float(v)) for k, v in host.items()},
                      on_step=True, on_epoch=False, batch_size=batch_size)

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
        torch.manual_seed(rank_seed(self.seed, self.global_rank, 0, stream=1))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ogan"] = {"g_iter": self.g_iter, "images_seen": self.images_seen}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("ogan", {})
        self.g_iter = int(state.get("g_iter", 0))
        self.images_seen = int(state.get("images_seen", 0))

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
        return self.recon_scale * standardize(self.encode(x, use_ema))

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

    def sample(self, n: int, seed: int | None = None, use_ema: bool = True) -> Tensor:
        """n images from z ~ N(0, I); a seed makes them reproducible."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=generator)
        return self.decode(z, use_ema)

