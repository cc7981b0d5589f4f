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
