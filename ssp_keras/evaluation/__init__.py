"""Evaluation: classical baselines (``baselines``), the fibre segmenter and evaluation reports."""
