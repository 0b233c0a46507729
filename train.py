"""Train an O-GAN: `python train.py [overrides]` (the same as `ogan-train`; see README.md and conf/config.yaml)."""

from ogan_pl.run.train import main

if __name__ == "__main__":
    main()
