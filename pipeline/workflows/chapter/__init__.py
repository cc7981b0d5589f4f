"""The whole chapter in one resumable command: the plan (``plan``, ``presets``), then each step
in its own run folder under one chapter folder (``workflow.run_chapter``).
"""
