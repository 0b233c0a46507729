"""D(x) = T(E(x)): the paper's avg (no parameters) or a linear head <w, E(x)> + b."""

from torch import Tensor, nn

HEADS = ("avg", "linear")


class DiscriminatorHead(nn.Module):
    def __init__(self, kind: str = "avg", z_dim: int = 128, init_std: float = 0.02):
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"disc_head must be one of {HEADS}, got {kind!r}")
        self.kind = kind
        if kind == "linear":
            self.linear = nn.Linear(z_dim, 1)
            nn.init.normal_(self.linear.weight, 0.0, init_std)
            nn.init.zeros_(self.linear.bias)

    def forward(self, code: Tensor) -> Tensor:
        if self.kind == "avg":
            return code.mean(dim=-1)
        return self.linear(code).squeeze(-1)
