"""See inside a convnet: feature maps, filter patterns, Grad-CAM heatmaps, hand-made kernels."""
