"""Evaluate and use trained runs: load a saved model safely, metrics, predictions, reports."""
