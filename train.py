"""Train an O-GAN: `python train.py [overrides]` (see README.md and conf/config.yaml)."""
from ogan_pl.cli import run
from ogan_pl.train import train

if __name__ == "__main__":
    run("config", train)
