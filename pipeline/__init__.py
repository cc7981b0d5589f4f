"""Deep learning on small image datasets with Keras: data, models, workflows, plots."""

from pipeline.errors import PipelineError

__all__ = ["PipelineError"]
__version__ = "0.1.0"
