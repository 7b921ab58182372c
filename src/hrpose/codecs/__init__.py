"""Heatmap codecs: keypoints <-> training targets and model outputs."""
