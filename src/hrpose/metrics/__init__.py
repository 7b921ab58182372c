"""Metrics: COCO keypoint AP (OKS), OKS-NMS and rescoring, MPII PCKh."""
