"""Custom Keras layers: spatial pyramid pooling, locally connected 2D, NetVLAD, stochastic depth.

Importing this package registers the layers (package "pipeline"), so models that use them
load from `.keras` files without `custom_objects`. One layer a module (named after it), plus
`keras2_import` (Keras 2 `LocallyConnected2D` weights), `kmeans` (NetVLAD's initial centres)
and `arguments` (the argument checks the layers share).
"""

from pipeline.layers.keras2_import import load_keras2_weights
from pipeline.layers.kmeans import kmeans
from pipeline.layers.locally_connected import LocallyConnected2D
from pipeline.layers.netvlad import NetVLAD, init_netvlad_from_features
from pipeline.layers.spatial_pyramid_pooling import SpatialPyramidPooling, bin_edges
from pipeline.layers.stochastic_depth_add import StochasticDepthAdd

__all__ = [
    "LocallyConnected2D",
    "NetVLAD",
    "SpatialPyramidPooling",
    "StochasticDepthAdd",
    "bin_edges",
    "init_netvlad_from_features",
    "kmeans",
    "load_keras2_weights",
]
