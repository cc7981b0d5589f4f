"""The knobs every classifier head shares. Light (no Keras): the CLI reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class HeadOptions:
    """The knobs heads share; a recipe uses those that apply to it."""

    dense: int = 256  # units of the hidden Dense layer (0: none)
    dropout: float = 0.5  # dropout rate before the output (0: none)
    clusters: int = 16  # NetVLAD clusters K (output K * channels)
    ghost_clusters: int = 0  # NetVLAD ghost clusters (GhostVLAD); 0: plain NetVLAD
    local_filters: int = 32  # filters of the locally connected head

    def validate(self) -> None:
        if self.dense < 0:
            raise PipelineError(f"`dense` must be >= 0, got {self.dense}")
        if not 0.0 <= self.dropout < 1.0:
            raise PipelineError(f"`dropout` must be in [0, 1), got {self.dropout}")
        if self.clusters < 1 or self.ghost_clusters < 0:
            raise PipelineError("`clusters` must be >= 1 and `ghost_clusters` >= 0")
        if self.local_filters < 1:
            raise PipelineError(f"`local_filters` must be >= 1, got {self.local_filters}")


# The rate a head trains at on cached features unless one is given. The book's heads put a
# dense layer on thousands of inputs and want the book's small 2e-5; a head that pools first
# ("gap") is a linear model on a few hundred pooled values: at 2e-5 it is still far from
# converged after 30 epochs, at 1e-3 it reaches its lowest validation loss within ~15.
BOOK_HEAD_LEARNING_RATE = 2e-5
HEAD_LEARNING_RATES = {"gap": 1e-3}


def head_learning_rate(head: str) -> float:
    """The default learning rate for training ``head``."""
    return HEAD_LEARNING_RATES.get(head, BOOK_HEAD_LEARNING_RATE)

