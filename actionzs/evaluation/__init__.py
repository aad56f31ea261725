"""Measuring a model and its prompts on labelled footage: trimmed clips (top-1, top-5, per-class
accuracy, confusion, a prompt ablation) and untrimmed videos (temporal mAP at several tIoU)."""
