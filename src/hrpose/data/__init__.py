"""Data: COCO/MPII readers, top-down samples, the crop geometry."""
