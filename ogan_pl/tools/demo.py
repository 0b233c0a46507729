"""`ogan-demo ckpt=PATH [port=7860 directions=FILE]` (or `python -m ogan_pl.tools.demo`): a web page
on this machine over a trained model: sample with a seed; upload or draw an image and see its
reconstruction and hybrid inversion with their PSNR; interpolate between two images; edit along a
directions file with one slider per direction (docs/demo.md). CPU is enough; nothing is downloaded."""

import errno
import sys
from typing import Annotated

from omegaconf import DictConfig
from pydantic import Field

from ogan_pl.checkpoints import PRETRAINED_PREFIX, checkpoint_name
from ogan_pl.config.schema import ModelCommandConfig
from ogan_pl.demo.app import Demo, Limits
from ogan_pl.demo.server import DemoServer, is_loopback
from ogan_pl.edits import fitted_elsewhere, load_directions
from ogan_pl.registry.values import PositiveFinite, PositiveInt, at_least
from ogan_pl.run.cli import run
from ogan_pl.run.models import open_model
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.stopping import StopRequested

Port = Annotated[int, Field(ge=0, le=65535, strict=True, description="a port from 0 (any free one) to 65535")]


class DemoConfig(ModelCommandConfig):
    """conf/demo.yaml."""

    directions: str | None
    host: Annotated[str, Field(min_length=1, description="an address such as 127.0.0.1")]
    port: Port
    max_upload_kb: PositiveInt
    max_steps: PositiveInt
    max_frames: at_least(2, "the two ends")
    max_samples: PositiveInt
    max_strength: PositiveFinite


def demo_directions(cfg: DictConfig, model):
    """(directions, names) from `directions`: a file, `auto` (a pretrained model's shipped ones, else
    none) or null (none: the page hides its edit section)."""
    source = cfg.directions
    if source == "auto":
        source = cfg.ckpt if str(cfg.ckpt).startswith(PRETRAINED_PREFIX) else None
    if source is None:
        return None, []
    found, names, provenance = load_directions(source, model.z_dim)
    if (warning := fitted_elsewhere(provenance, model)) is not None:
        print(f"warning: {source}: {warning}", file=sys.stderr, flush=True)
    return found, names


def serve(cfg: DictConfig) -> None:
    model = open_model(cfg.ckpt, cfg.device)
    directions, names = demo_directions(cfg, model)
    limits = Limits(**{k: cfg[k] for k in ("max_upload_kb", "max_steps", "max_frames", "max_samples", "max_strength")})
    demo = Demo(model, directions, names, limits, cfg.use_ema, checkpoint_name(cfg.ckpt))
    try:
        server = DemoServer(demo, cfg.host, cfg.port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port={cfg.port} is in use (another ogan-demo?); pass port=N, or port=0 for any") from None
        raise UserError(f"cannot listen on host={cfg.host} port={cfg.port} ({err.strerror or err})") from None
    if not is_loopback(cfg.host):
        print(
            f"warning: host={cfg.host}: anyone who can reach this machine can use the demo (host=127.0.0.1: only you)",
            file=sys.stderr,
            flush=True,
        )
    print(f"ogan-demo: {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except StopRequested as stop:
        if demo.busy:
            print("finishing the running action first (Ctrl-C again exits at once)", file=sys.stderr, flush=True)
        demo.close()  # torch must not be computing in a request thread while the interpreter exits
        stop.add_note("the demo is closed")
        raise
    finally:
        server.server_close()


def main() -> None:
    """The `ogan-demo` console script."""
    run("demo", serve, DemoConfig)


if __name__ == "__main__":
    main()
