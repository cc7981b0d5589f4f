"""What a frozen conv base computed, kept on disk: features per split (``features``, written in
``parts``), augmented views (``views``), and the workflows' ways of getting them for a dataset
(``dataset_features``, ``training_views``). Keyed, written in parts, checksummed.
"""
