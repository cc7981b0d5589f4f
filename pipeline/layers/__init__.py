"""Custom Keras layers: spatial pyramid pooling, locally connected 2D, NetVLAD.

Importing this package registers the layers (package "pipeline"), so models that use them
load from `.keras` files without `custom_objects`.
"""

from pipeline.layers.locally_connected import LocallyConnected2D, load_keras2_weights
from pipeline.layers.netvlad import NetVLAD, init_netvlad_from_features, kmeans
from pipeline.layers.spatial_pyramid_pooling import SpatialPyramidPooling, bin_edges

__all__ = [
    "LocallyConnected2D",
    "NetVLAD",
    "SpatialPyramidPooling",
    "bin_edges",
    "init_netvlad_from_features",
    "kmeans",
    "load_keras2_weights",
]
