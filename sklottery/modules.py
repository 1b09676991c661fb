"""Ready-made torch modules. :class:`MLP` is the estimators' default network."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """A fully-connected ReLU network returning logits.

    With the defaults it is LeNet-300-100 of Frankle & Carbin (2019) once the
    sizes are known. Used inside a sklottery estimator, ``input_units`` and
    ``output_units`` left as ``None`` are taken from the data.

    Parameters
    ----------
    input_units, output_units : int
        Sizes of the input and of the output (classes, or targets).
    hidden_units : sequence of int, default=(300, 100)
    dropout : float, default=0.0
    """

    def __init__(
        self,
        input_units: int | None = None,
        output_units: int | None = None,
        hidden_units: Sequence[int] = (300, 100),
        dropout: float = 0.0,
    ):
        super().__init__()
        if input_units is None or output_units is None:
            raise ValueError(
                "MLP needs input_units and output_units (a sklottery estimator "
                "fills them from the data)"
            )
        sizes = [int(input_units), *[int(h) for h in hidden_units]]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(sizes[-1], int(output_units))

    def forward(self, X):
        return self.output(self.hidden(X))
